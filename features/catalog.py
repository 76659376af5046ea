"""The default feature catalogue: what a detection engineer looks at per user-day.

Grouped by log family (logons, removable media, web, mail, network authentication, host
logons and privilege, beacons), each feature says what it measures, how an alert reads (a
``(s)`` agrees with the count: "1 logon", "2 logons"), and the ATT&CK technique it is
evidence of. Features over a family the logs do not contain are
simply 0 everywhere.

Beside it, named feature families (:data:`FEATURE_FAMILIES`) that only some log sources
feed, added on request (:func:`default_specs` ``families=``), so that the default catalogue,
and every model and checkpoint keyed by its schema hash, stays as it is:

``templates``
    Free-text logs mined into templates (the ``drain`` parser's ``template:<id>`` actions)
    and syslog lines by program (``syslog.<app>``): volume, templates new to the entity,
    templates rare in the population, and lines whose template reads like an error.
``windows``
    The Windows logons that are no person sitting down at a machine (4624 logon types 3, 4,
    5, 8, 9): network logons to machines (new ones: lateral movement) and outside working
    hours, batch and service logons of the account, new-credentials logons.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from features.categories import CLOUD_STORAGE, HACKING_TOOLS_PATTERN, JOB_SEARCH, LEAK_SITES
from features.spec import FeatureSpec
from streams import actions as a

_LOGON = {"action": a.LOGON}
_USB = {"action": a.USB_CONNECT}
_COPY = {"action": a.FILE_COPY_REMOVABLE}
_HTTP = {"action": a.HTTP_VISIT}
_UPLOAD = {"action": a.HTTP_UPLOAD}
_DOWNLOAD = {"action": a.HTTP_DOWNLOAD}
_WEB = {"action": (a.HTTP_VISIT, a.HTTP_DOWNLOAD, a.HTTP_UPLOAD)}
_EMAIL = {"action": a.EMAIL_SEND}
_AUTH = {"action": a.AUTH}
_NET = {"action": (a.AUTH, a.CONNECT)}
_PRIVILEGE = {"action": (a.RUN_AS, a.SWITCH_USER)}

# -- Behaviour groups ---------------------------------------------------------------------------
# Each feature names the behaviour (the act) it measures. Features of one group are correlated
# views of one act, and the tail detectors can count a group once, by its most surprising
# feature (models.combine; off by default, PipelineConfig.behaviour_groups): an admin's night
# of work raises off-hours logons, the logon-hour deviation and off-hours events together, and
# is one act, not three. Chosen by what each feature measures, never by how a tagging ranks a
# benchmark. A feature of no listed group is its own.

#: When the account is active: every off-hours, weekend, unusual-hour and hour-deviation
#: feature, whichever log family it counts. Being at work at 2 a.m. is one fact, whether it
#: shows in logons, authentications, USB connects or all events.
ACTIVITY_TIME = "activity_time"
#: Which workstations the account sits down at, and how often (interactive logons).
INTERACTIVE_LOGONS = "interactive_logons"
#: Reaching other machines over the network: authentications, network logons and explicit
#: or new credentials to servers (lateral movement when the destinations are new).
REMOTE_ACCESS = "remote_access"
#: Repeated failures to authenticate (password guessing), interactive or over the network.
CREDENTIAL_GUESSING = "credential_guessing"
#: Removable media: connecting it, where, and the files copied to it (one copy session shows
#: in connects, copies and distinct files at once).
REMOVABLE_MEDIA = "removable_media"
#: Offensive tools on the host: file operations on files named like them. Fetching one from
#: the web is another act (web downloads, ATT&CK T1105 rather than the tool's own technique).
OFFENSIVE_TOOLS = "offensive_tools"
#: Where the account goes on the web: volume, distinct, new and rare domains.
WEB_BROWSING = "web_browsing"
#: Data leaving through web uploads: volume, new or rare destinations, leak and cloud sites.
WEB_UPLOADS = "web_uploads"
#: Data or tools coming in through web downloads (ingress tool transfer, T1105), offensive
#: tools named in the URL included.
WEB_DOWNLOADS = "web_downloads"
#: Visits to job-search sites (a precursor in the published insider scenarios).
JOB_SEARCH_VISITS = "job_search"
#: Sending email: how many, to whom, how large; one message's recipients, size and
#: attachments are properties of the same act.
EMAIL = "email"
#: Acting as another account on the host (sudo, su) and which ones.
PRIVILEGE = "privilege"
#: Programs run for the first time.
PROGRAMS = "programs"
#: Accounts created or added to security groups.
ACCOUNT_CHANGES = "account_changes"
#: Machine-like regularity of repeated connections (command-and-control beacons), web or not.
BEACONS = "beacons"
#: Free-text log volume.
LOG_VOLUME = "log_volume"
#: Log templates (code paths, programs) new to the entity or rare in the population.
LOG_TEMPLATES = "log_templates"
#: Log lines that report errors or refusals.
LOG_ERRORS = "log_errors"
#: Batch and service logons: scheduled tasks or services running with the account.
UNATTENDED_LOGONS = "unattended_logons"

#: Every behaviour group of the catalogue and its families, with what it covers.
BEHAVIOURS: Mapping[str, str] = MappingProxyType(
    {
        ACTIVITY_TIME: "when the account is active (off hours, weekends, unusual hours)",
        INTERACTIVE_LOGONS: "which workstations the account logs on to, and how often",
        REMOTE_ACCESS: "reaching other machines over the network",
        CREDENTIAL_GUESSING: "failed authentications and logons",
        REMOVABLE_MEDIA: "removable media connections and copies",
        OFFENSIVE_TOOLS: "offensive tools on the host",
        WEB_BROWSING: "web destinations",
        WEB_UPLOADS: "web uploads",
        WEB_DOWNLOADS: "web downloads",
        JOB_SEARCH_VISITS: "job-search sites",
        EMAIL: "sent email",
        PRIVILEGE: "acting as another account",
        PROGRAMS: "new programs",
        ACCOUNT_CHANGES: "account creation and group changes",
        BEACONS: "regular, machine-like connections",
        LOG_VOLUME: "free-text log volume",
        LOG_TEMPLATES: "new or rare log templates",
        LOG_ERRORS: "log lines reporting errors",
        UNATTENDED_LOGONS: "batch and service logons",
    }
)

DEFAULT_SPECS: tuple[FeatureSpec, ...] = (
    # Logons
    FeatureSpec(
        name="logons",
        group=INTERACTIVE_LOGONS,
        kind="count",
        where=_LOGON,
        doc="Number of logons.",
        explain="{observed:g} logon(s) (typical {typical})",
    ),
    FeatureSpec(
        name="off_hours_logons",
        group=ACTIVITY_TIME,
        kind="off_hours",
        where=_LOGON,
        doc="Logons outside working hours or on weekend days.",
        explain="{observed:g} logon(s) outside working hours (typical {typical})",
        technique="T1078",
    ),
    FeatureSpec(
        name="unusual_hour_logons",
        group=ACTIVITY_TIME,
        kind="unusual_hour",
        where=_LOGON,
        doc="Logons at an hour of day the entity rarely logged on at before.",
        explain="{observed:g} logon(s) at hours unusual for this account (typical {typical})",
        technique="T1078",
    ),
    FeatureSpec(
        name="logon_hour_deviation",
        group=ACTIVITY_TIME,
        kind="hour_deviation",
        where=_LOGON,
        doc="Mean distance in hours between logon times and the entity's usual logon time.",
        explain="logons {observed:.1f} h away from the usual time (typical {typical})",
        technique="T1078",
    ),
    FeatureSpec(
        name="weekend_logons",
        group=ACTIVITY_TIME,
        kind="weekend",
        where=_LOGON,
        doc="Logons on weekend days.",
        explain="{observed:g} weekend logon(s) (typical {typical})",
        technique="T1078",
    ),
    FeatureSpec(
        name="logon_hosts",
        group=INTERACTIVE_LOGONS,
        kind="distinct",
        field="host",
        where=_LOGON,
        doc="Distinct machines logged on to.",
        explain="logged on to {observed:g} machine(s) (typical {typical})",
    ),
    FeatureSpec(
        name="new_logon_hosts",
        group=INTERACTIVE_LOGONS,
        kind="first_seen",
        field="host",
        where=_LOGON,
        doc="Machines logged on to for the first time.",
        explain="logged on to {observed:g} machine(s) never used before (typical {typical})",
        technique="T1078",
    ),
    # Removable media
    FeatureSpec(
        name="usb_connects",
        group=REMOVABLE_MEDIA,
        kind="count",
        where=_USB,
        doc="Removable media connections.",
        explain="{observed:g} removable media connection(s) (typical {typical})",
        technique="T1052.001",
    ),
    FeatureSpec(
        name="off_hours_usb_connects",
        group=ACTIVITY_TIME,
        kind="off_hours",
        where=_USB,
        doc="Removable media connections outside working hours.",
        explain="{observed:g} removable media connection(s) outside working hours "
        "(typical {typical})",
        technique="T1052.001",
    ),
    FeatureSpec(
        name="new_usb_hosts",
        group=REMOVABLE_MEDIA,
        kind="first_seen",
        field="host",
        where=_USB,
        doc="Machines on which the account connected removable media for the first time (a "
        "stick plugged into someone else's PC).",
        explain="removable media connected on {observed:g} machine(s) never used for it before "
        "(typical {typical})",
        technique="T1052.001",
    ),
    FeatureSpec(
        name="usb_file_copies",
        group=REMOVABLE_MEDIA,
        kind="count",
        where=_COPY,
        doc="Files copied to removable media.",
        explain="{observed:g} file(s) copied to removable media (typical {typical})",
        technique="T1052.001",
    ),
    FeatureSpec(
        name="usb_distinct_files",
        group=REMOVABLE_MEDIA,
        kind="distinct",
        field="target",
        where=_COPY,
        doc="Distinct files copied to removable media.",
        explain="{observed:g} distinct file(s) copied to removable media (typical {typical})",
        technique="T1052.001",
    ),
    FeatureSpec(
        name="hacking_tool_files",
        group=OFFENSIVE_TOOLS,
        kind="count",
        where={
            "action": (a.FILE_OPEN, a.FILE_WRITE, a.FILE_COPY, a.FILE_COPY_REMOVABLE),
            "target~": HACKING_TOOLS_PATTERN,
        },
        doc="File operations on files named like offensive tools (keyloggers, credential "
        "dumpers, remote-execution kits).",
        explain="{observed:g} file operation(s) on hacking-tool files (typical {typical})",
        technique="T1056.001",
    ),
    # Web
    FeatureSpec(
        name="http_visits",
        group=WEB_BROWSING,
        kind="count",
        where=_HTTP,
        doc="Web page visits.",
        explain="{observed:g} web visit(s) (typical {typical})",
    ),
    FeatureSpec(
        name="web_domains",
        group=WEB_BROWSING,
        kind="distinct",
        field="target",
        where=_WEB,
        doc="Distinct web domains visited, downloaded from or uploaded to.",
        explain="{observed:g} distinct web domain(s) (typical {typical})",
    ),
    FeatureSpec(
        name="new_web_domains",
        group=WEB_BROWSING,
        kind="first_seen",
        field="target",
        where=_WEB,
        doc="Web domains this entity never used before.",
        explain="{observed:g} web domain(s) never used before (typical {typical})",
    ),
    FeatureSpec(
        name="rare_web_domains",
        group=WEB_BROWSING,
        kind="rare_count",
        field="target",
        where=_WEB,
        doc="Web domains at most one other entity used before.",
        explain="{observed:g} web domain(s) almost nobody else uses (typical {typical})",
    ),
    FeatureSpec(
        name="web_domain_rarity",
        group=WEB_BROWSING,
        kind="rarity",
        field="target",
        where=_WEB,
        doc="Population rarity (bits) of the rarest web domain used.",
        explain="rarest web domain scores {observed:.1f} bits of rarity (typical {typical})",
    ),
    FeatureSpec(
        name="http_uploads",
        group=WEB_UPLOADS,
        kind="count",
        where=_UPLOAD,
        doc="Uploads to web sites.",
        explain="{observed:g} web upload(s) (typical {typical})",
        technique="T1567",
    ),
    FeatureSpec(
        name="uploads_rare_domains",
        group=WEB_UPLOADS,
        kind="rare_count",
        field="target",
        where=_UPLOAD,
        doc="Domains uploaded to that at most one other entity uploaded to before.",
        explain="uploads to {observed:g} domain(s) almost nobody else uploads to "
        "(typical {typical})",
        technique="T1567",
    ),
    FeatureSpec(
        name="uploads_new_domains",
        group=WEB_UPLOADS,
        kind="first_seen",
        field="target",
        where=_UPLOAD,
        doc="Domains this entity uploaded to for the first time.",
        explain="uploads to {observed:g} domain(s) never uploaded to before (typical {typical})",
        technique="T1567",
    ),
    FeatureSpec(
        name="job_site_visits",
        group=JOB_SEARCH_VISITS,
        kind="count",
        where={**_WEB, "target": JOB_SEARCH},
        doc="Visits to job-search sites (a precursor in the published insider scenarios).",
        explain="{observed:g} visit(s) to job-search sites (typical {typical})",
    ),
    FeatureSpec(
        name="leak_or_cloud_uploads",
        group=WEB_UPLOADS,
        kind="count",
        where={"action": a.HTTP_UPLOAD, "target": LEAK_SITES + CLOUD_STORAGE},
        doc="Uploads to leak sites, paste sites, personal cloud storage or file sharing.",
        explain="{observed:g} upload(s) to leak or personal storage sites (typical {typical})",
        technique="T1567.002",
    ),
    FeatureSpec(
        name="http_downloads",
        group=WEB_DOWNLOADS,
        kind="count",
        where=_DOWNLOAD,
        doc="Downloads from web sites.",
        explain="{observed:g} web download(s) (typical {typical})",
    ),
    FeatureSpec(
        name="downloads_rare_domains",
        group=WEB_DOWNLOADS,
        kind="rare_count",
        field="target",
        where=_DOWNLOAD,
        doc="Domains downloaded from that at most one other entity downloaded from before.",
        explain="downloads from {observed:g} domain(s) almost nobody else uses (typical {typical})",
        technique="T1105",
    ),
    FeatureSpec(
        name="hacking_tool_downloads",
        group=WEB_DOWNLOADS,
        kind="count",
        where={"action": (a.HTTP_VISIT, a.HTTP_DOWNLOAD), "attrs.url~": HACKING_TOOLS_PATTERN},
        doc="Web requests whose URL names an offensive tool (a keylogger or credential dumper "
        "fetched from the web).",
        explain="{observed:g} web request(s) for hacking tools (typical {typical})",
        technique="T1105",
    ),
    # Mail
    FeatureSpec(
        name="emails_sent",
        group=EMAIL,
        kind="count",
        where=_EMAIL,
        doc="Emails sent.",
        explain="{observed:g} email(s) sent (typical {typical})",
    ),
    FeatureSpec(
        name="email_recipients",
        group=EMAIL,
        kind="distinct",
        field="target",
        where=_EMAIL,
        params={"split": ";"},
        doc="Distinct recipients of sent email.",
        explain="emailed {observed:g} distinct recipient(s) (typical {typical})",
    ),
    FeatureSpec(
        name="new_email_recipients",
        group=EMAIL,
        kind="first_seen",
        field="target",
        where=_EMAIL,
        params={"split": ";"},
        doc="Recipients this entity never emailed before.",
        explain="emailed {observed:g} recipient(s) never emailed before (typical {typical})",
    ),
    FeatureSpec(
        name="max_email_recipients",
        group=EMAIL,
        kind="max_split",
        field="target",
        where=_EMAIL,
        params={"split": ";"},
        doc="Recipients of the largest email sent.",
        explain="one email went to {observed:g} recipient(s) (typical {typical})",
        technique="T1534",
    ),
    FeatureSpec(
        name="email_bytes_sent",
        group=EMAIL,
        kind="sum",
        field="bytes",
        where=_EMAIL,
        doc="Total size of sent email.",
        explain="{observed:g} byte(s) of email sent (typical {typical})",
    ),
    FeatureSpec(
        name="email_attachments",
        group=EMAIL,
        kind="sum",
        field="attrs.attachments",
        where=_EMAIL,
        doc="Attachments of sent email.",
        explain="{observed:g} attachment(s) sent by email (typical {typical})",
    ),
    # Network authentication (LANL-style). No plain count of distinct destinations: an admin's
    # maintenance night touches dozens of servers the account always uses; lateral movement
    # shows in the destinations that are new to it.
    FeatureSpec(
        name="auths",
        group=REMOTE_ACCESS,
        kind="count",
        where=_AUTH,
        doc="Network authentications.",
        explain="{observed:g} network authentication(s) (typical {typical})",
    ),
    FeatureSpec(
        name="new_auth_destinations",
        group=REMOTE_ACCESS,
        kind="first_seen",
        field="target",
        where=_AUTH,
        doc="Hosts authenticated to for the first time (lateral movement fan-out).",
        explain="authenticated to {observed:g} host(s) never used before (typical {typical})",
        technique="T1021",
    ),
    FeatureSpec(
        name="failed_auths",
        group=CREDENTIAL_GUESSING,
        kind="failure_count",
        where=_AUTH,
        doc="Failed network authentications.",
        explain="{observed:g} failed authentication(s) (typical {typical})",
        technique="T1110",
    ),
    FeatureSpec(
        name="off_hours_auths",
        group=ACTIVITY_TIME,
        kind="off_hours",
        where=_AUTH,
        doc="Network authentications outside working hours.",
        explain="{observed:g} authentication(s) outside working hours (typical {typical})",
        technique="T1078",
    ),
    # Host logons and privilege (Linux auth.log, Windows Security events)
    FeatureSpec(
        name="failed_logons",
        group=CREDENTIAL_GUESSING,
        kind="count",
        where={"action": a.LOGON_FAILURE},
        doc="Failed interactive or remote logons (sshd failures, Windows 4625).",
        explain="{observed:g} failed logon(s) (typical {typical})",
        technique="T1110",
    ),
    FeatureSpec(
        name="privileged_commands",
        group=PRIVILEGE,
        kind="count",
        where=_PRIVILEGE,
        doc="Commands run as another account or shells switched to one (sudo, su).",
        explain="{observed:g} command(s) run as another account (typical {typical})",
        technique="T1548",
    ),
    FeatureSpec(
        name="new_privileged_targets",
        group=PRIVILEGE,
        kind="first_seen",
        field="target",
        where=_PRIVILEGE,
        doc="Accounts run as or switched to for the first time (sudo -u, su).",
        explain="became {observed:g} account(s) never used before (typical {typical})",
        technique="T1548",
    ),
    FeatureSpec(
        name="new_programs",
        group=PROGRAMS,
        kind="first_seen",
        field="target",
        where={"action": a.PROCESS_START},
        doc="Programs started for the first time by the account (Windows 4688).",
        explain="started {observed:g} program(s) never run before (typical {typical})",
        technique="T1059",
    ),
    FeatureSpec(
        name="account_changes",
        group=ACCOUNT_CHANGES,
        kind="count",
        where={"action": (a.ACCOUNT_CREATED, a.GROUP_MEMBER_ADDED)},
        doc="Accounts created or added to a security group (Windows 4720, 4732).",
        explain="{observed:g} account(s) created or added to groups (typical {typical})",
        technique="T1098",
    ),
    FeatureSpec(
        name="explicit_credential_targets",
        group=REMOTE_ACCESS,
        kind="distinct",
        field="target",
        where={"action": a.EXPLICIT_CREDENTIALS},
        doc="Distinct servers logged on to with explicitly given credentials (Windows 4648).",
        explain="used explicit credentials on {observed:g} server(s) (typical {typical})",
        technique="T1078",
    ),
    # Beacons
    FeatureSpec(
        name="http_beacon_regularity",
        group=BEACONS,
        kind="periodicity",
        field="target",
        where=_WEB,
        doc="Regularity (1 = constant period) of the most regular repeated web destination.",
        explain="web requests to one domain at a regularity of {observed:.2f} (typical {typical})",
        technique="T1071.001",
    ),
    FeatureSpec(
        name="net_beacon_regularity",
        group=BEACONS,
        kind="periodicity",
        field="target",
        where=_NET,
        doc="Regularity of the most regular repeated connection or authentication target.",
        explain="connections to one host at a regularity of {observed:.2f} (typical {typical})",
        technique="T1071",
    ),
    # Everything
    FeatureSpec(
        name="off_hours_events",
        group=ACTIVITY_TIME,
        kind="off_hours",
        doc="All events outside working hours or on weekend days.",
        explain="{observed:g} event(s) outside working hours (typical {typical})",
    ),
)

# -- Feature families -------------------------------------------------------------------------

#: Actions of free-text events: the drain parser's ``template:<cluster id>`` and the syslog
#: parser's ``syslog.<app>`` (``syslog`` for a line that names no program).
TEMPLATE_ACTIONS_PATTERN = r"^(?:template:|syslog(?:\.|$))"
#: Words of a mined template that reports a failure or a refusal. Plain alternatives only:
#: the batch path runs it in polars (Rust's regex), the online path in Python's ``re``.
ERROR_WORDS_PATTERN = (
    "error|fail|fatal|panic|exception|denied|refused|reject|invalid|unauthori[sz]ed"
    "|forbidden|timed? ?out|unreachable|corrupt|abort"
)

_TEMPLATES = {"action~": TEMPLATE_ACTIONS_PATTERN}
_NETWORK_LOGON = {"action": a.LOGON_NETWORK}

#: The ``templates`` family: what a log-anomaly detector (DeepLog, LogCluster) looks at.
TEMPLATE_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        name="template_events",
        group=LOG_VOLUME,
        kind="count",
        where=_TEMPLATES,
        doc="Free-text log lines: events of mined templates (drain) or of syslog programs.",
        explain="{observed:g} log line(s) (typical {typical})",
    ),
    FeatureSpec(
        name="new_templates",
        group=LOG_TEMPLATES,
        kind="first_seen",
        field="action",
        where=_TEMPLATES,
        doc="Log templates (or syslog programs) the entity never produced before: code paths "
        "or programs it does not normally run.",
        explain="{observed:g} log template(s) never seen from this entity before "
        "(typical {typical})",
    ),
    FeatureSpec(
        name="rare_templates",
        group=LOG_TEMPLATES,
        kind="rare_count",
        field="action",
        where=_TEMPLATES,
        doc="Log templates (or syslog programs) at most one other entity produced before.",
        explain="{observed:g} log template(s) almost no other entity produces (typical {typical})",
    ),
    FeatureSpec(
        name="template_rarity",
        group=LOG_TEMPLATES,
        kind="rarity",
        field="action",
        where=_TEMPLATES,
        doc="Population rarity (bits) of the rarest log template (or syslog program) produced.",
        explain="rarest log template scores {observed:.1f} bits of rarity (typical {typical})",
    ),
    FeatureSpec(
        name="error_template_events",
        group=LOG_ERRORS,
        kind="count",
        where={"attrs.template~": ERROR_WORDS_PATTERN},
        doc="Log lines whose mined template reads like an error or a refusal (error, failed, "
        "denied, refused, timeout...; the drain parser's templates).",
        explain="{observed:g} log line(s) reporting errors or refusals (typical {typical})",
    ),
)

#: The ``windows`` family: the Windows logons that are no person at a machine, which the
#: default catalogue leaves out of its logon features (:mod:`streams.actions`).
WINDOWS_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        name="network_logon_hosts",
        group=REMOTE_ACCESS,
        kind="distinct",
        field="host",
        where=_NETWORK_LOGON,
        doc="Distinct machines accessed with a network logon (file shares, remote "
        "administration; Windows 4624 logon types 3 and 8).",
        explain="network logons to {observed:g} machine(s) (typical {typical})",
        technique="T1021",
    ),
    FeatureSpec(
        name="new_network_logon_hosts",
        group=REMOTE_ACCESS,
        kind="first_seen",
        field="host",
        where=_NETWORK_LOGON,
        doc="Machines accessed with a network logon for the first time (lateral movement fan-out).",
        explain="network logons to {observed:g} machine(s) never accessed before "
        "(typical {typical})",
        technique="T1021",
    ),
    FeatureSpec(
        name="off_hours_network_logons",
        group=ACTIVITY_TIME,
        kind="off_hours",
        where=_NETWORK_LOGON,
        doc="Network logons outside working hours or on weekend days.",
        explain="{observed:g} network logon(s) outside working hours (typical {typical})",
        technique="T1021",
    ),
    FeatureSpec(
        name="unattended_logons",
        group=UNATTENDED_LOGONS,
        kind="count",
        where={"action": (a.LOGON_BATCH, a.LOGON_SERVICE)},
        doc="Batch and service logons of the account (4624 logon types 4 and 5): scheduled "
        "tasks or services running with its credentials.",
        explain="{observed:g} batch or service logon(s) (typical {typical})",
        technique="T1053",
    ),
    FeatureSpec(
        name="new_credentials_logons",
        group=REMOTE_ACCESS,
        kind="count",
        where={"action": a.LOGON_NEW_CREDENTIALS},
        doc="Logons with other outbound credentials (4624 logon type 9: runas /netonly, and "
        "pass-the-hash tools).",
        explain="{observed:g} logon(s) with other outbound credentials (typical {typical})",
        technique="T1550.002",
    ),
)

#: Family name -> its specs (per user; :func:`family_specs` gives the per-host variant).
FEATURE_FAMILIES: Mapping[str, tuple[FeatureSpec, ...]] = MappingProxyType(
    {"templates": TEMPLATE_SPECS, "windows": WINDOWS_SPECS}
)
#: The family names, in the order their specs follow the default catalogue.
FAMILY_NAMES: tuple[str, ...] = tuple(FEATURE_FAMILIES)

# Per host, the machines "accessed" are the host itself: the accounts accessing it instead.
_HOST_VARIANTS: Mapping[str, FeatureSpec] = MappingProxyType(
    {
        "network_logon_hosts": FeatureSpec(
            name="network_logon_users",
            group=REMOTE_ACCESS,
            kind="distinct",
            field="user",
            where=_NETWORK_LOGON,
            doc="Distinct accounts accessing the host with a network logon.",
            explain="{observed:g} account(s) logged on over the network (typical {typical})",
            technique="T1021",
        ),
        "new_network_logon_hosts": FeatureSpec(
            name="new_network_logon_users",
            group=REMOTE_ACCESS,
            kind="first_seen",
            field="user",
            where=_NETWORK_LOGON,
            doc="Accounts accessing the host with a network logon for the first time.",
            explain="{observed:g} account(s) logged on over the network for the first time "
            "(typical {typical})",
            technique="T1021",
        ),
    }
)


def check_families(families: Iterable[str]) -> tuple[str, ...]:
    """Feature family names, validated, without repeats, in :data:`FAMILY_NAMES` order.

    The order (not the caller's) fixes the spec order, so the schema hash of a set of
    families does not depend on how a config lists them.

    Examples
    --------
    >>> check_families(["windows", "templates", "windows"])
    ('templates', 'windows')
    >>> check_families(["drain"])
    Traceback (most recent call last):
    ...
    ValueError: unknown feature family 'drain' (known: templates, windows)
    """
    names = (families,) if isinstance(families, str) else tuple(families)
    for name in names:
        if name not in FEATURE_FAMILIES:
            raise ValueError(f"unknown feature family {name!r} (known: {', '.join(FAMILY_NAMES)})")
    return tuple(name for name in FAMILY_NAMES if name in names)


def family_specs(family: str, entity: str = "user") -> tuple[FeatureSpec, ...]:
    """The specs of one feature family for an entity kind.

    Examples
    --------
    >>> [s.name for s in family_specs("windows", "host")][:2]
    ['network_logon_users', 'new_network_logon_users']
    """
    (name,) = check_families((family,))
    if entity not in ("user", "host"):
        raise ValueError(f"entity must be 'user' or 'host', not {entity!r}")
    specs = FEATURE_FAMILIES[name]
    if entity == "host":
        specs = tuple(_HOST_VARIANTS.get(spec.name, spec) for spec in specs)
    return specs


# Features about a user's own identity or endpoint that make no sense per host: a host "logs
# on to" itself, so distinct / new logon hosts are constant there.
_USER_ONLY = frozenset({"logon_hosts", "new_logon_hosts"})


def default_specs(entity: str = "user", families: Iterable[str] = ()) -> tuple[FeatureSpec, ...]:
    """The default catalogue for an entity kind, with the named feature families after it.

    Parameters
    ----------
    entity
        ``"user"`` (the full :data:`DEFAULT_SPECS`) or ``"host"``: the host-day variant
        replaces logon hosts by the distinct / new users logging on to the host.
    families
        Names of :data:`FEATURE_FAMILIES` to add (in :data:`FAMILY_NAMES` order, whatever the
        order given); an unknown name is a ``ValueError`` naming the known ones.

    Examples
    --------
    >>> len(default_specs("user")) == len(DEFAULT_SPECS)
    True
    >>> [s.name for s in default_specs("host") if "logon_users" in s.name]
    ['logon_users', 'new_logon_users']
    >>> [s.name for s in default_specs("user", ["templates"])][len(DEFAULT_SPECS):][:2]
    ['template_events', 'new_templates']
    """
    base = _entity_specs(entity)
    names = check_families(families)
    if not names:
        return base
    return base + tuple(spec for name in names for spec in family_specs(name, entity))


def _entity_specs(entity: str) -> tuple[FeatureSpec, ...]:
    if entity == "user":
        return DEFAULT_SPECS
    if entity != "host":
        raise ValueError(f"entity must be 'user' or 'host', not {entity!r}")
    specs: list[FeatureSpec] = []
    for spec in DEFAULT_SPECS:
        if spec.name == "logon_hosts":
            specs.append(
                FeatureSpec(
                    name="logon_users",
                    group=INTERACTIVE_LOGONS,
                    kind="distinct",
                    field="user",
                    where=_LOGON,
                    doc="Distinct accounts logging on to the host.",
                    explain="{observed:g} account(s) logged on (typical {typical})",
                )
            )
        elif spec.name == "new_logon_hosts":
            specs.append(
                FeatureSpec(
                    name="new_logon_users",
                    group=INTERACTIVE_LOGONS,
                    kind="first_seen",
                    field="user",
                    where=_LOGON,
                    doc="Accounts logging on to the host for the first time.",
                    explain="{observed:g} account(s) logged on for the first time "
                    "(typical {typical})",
                    technique="T1078",
                )
            )
        elif spec.name == "unusual_hour_logons":
            specs.append(
                dataclasses.replace(
                    spec,
                    doc="Logons at an hour of day the host rarely saw logons at before.",
                    explain="{observed:g} logon(s) at hours unusual for this host "
                    "(typical {typical})",
                )
            )
        elif spec.name not in _USER_ONLY:
            specs.append(spec)
    return tuple(specs)
