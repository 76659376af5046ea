"""The shared action vocabulary: every parser maps its log's verbs onto these names.

Features select events by these strings, so a new log format only has to map into them.
"""

from __future__ import annotations

# Sessions on a machine (CERT logon.csv, sshd accepted, Windows 4624 of an interactive or
# remote-interactive logon type, 4634).
LOGON = "logon"
LOGOFF = "logoff"
# Windows 4624 logons that are no person sitting down at a machine, kept apart from LOGON so
# that logon counts, hours and hosts describe people: network (type 3, 8: file shares,
# Kerberos/NTLM to a server), batch (4: scheduled tasks), service (5, and 0: the system),
# new credentials (9: runas /netonly, a process with other outbound credentials).
LOGON_NETWORK = "logon_network"
LOGON_BATCH = "logon_batch"
LOGON_SERVICE = "logon_service"
LOGON_NEW_CREDENTIALS = "logon_new_credentials"
# A refused logon attempt (sshd Failed <method>, Windows 4625): one per attempt, kept apart
# from LOGON so that logon counts and hours are not inflated by brute force.
LOGON_FAILURE = "logon_failure"
# sshd's "Invalid user U from IP": a connection naming an account that does not exist. Its
# password attempts are LOGON_FAILURE lines of their own, so this is no failure count.
INVALID_USER = "invalid_user"
# A PAM session opened / closed (sshd, su); the logon itself is LOGON, so sessions are not
# counted twice as logons. Target holds the session's account.
SESSION_OPEN = "session_open"
SESSION_CLOSE = "session_close"
# Privilege: a command run as another account (sudo; target = that account), a shell switched
# to another account (su; target = that account), a logon given special privileges (Windows
# 4672), a logon with explicit credentials (Windows 4648; target = the target server).
RUN_AS = "run_as"
SWITCH_USER = "switch_user"
SPECIAL_PRIVILEGES = "special_privileges"
EXPLICIT_CREDENTIALS = "explicit_credentials"
# Processes and accounts (Windows 4688 / 4720 / 4732): target holds the executable, the new
# account, the group.
PROCESS_START = "process_start"
ACCOUNT_CREATED = "account_created"
GROUP_MEMBER_ADDED = "group_member_added"
# Removable media (CERT device.csv).
USB_CONNECT = "usb_connect"
USB_DISCONNECT = "usb_disconnect"
# Files (CERT file.csv). A copy or write whose destination is removable media is
# FILE_COPY_REMOVABLE whatever the log's own verb was: that is what exfiltration looks like.
FILE_OPEN = "file_open"
FILE_WRITE = "file_write"
FILE_COPY = "file_copy"
FILE_DELETE = "file_delete"
FILE_COPY_REMOVABLE = "file_copy_removable"
# Mail (CERT email.csv): target holds the recipients joined by ";".
EMAIL_SEND = "email_send"
EMAIL_VIEW = "email_view"
# Web (CERT http.csv): target holds the domain.
HTTP_VISIT = "http_visit"
HTTP_DOWNLOAD = "http_download"
HTTP_UPLOAD = "http_upload"
# Network authentication (LANL auth.txt): target holds the destination computer.
AUTH = "auth"
# Generic network connection (JSON lines with destination.address).
CONNECT = "connect"

ALL_ACTIONS: frozenset[str] = frozenset(
    {
        LOGON,
        LOGOFF,
        LOGON_NETWORK,
        LOGON_BATCH,
        LOGON_SERVICE,
        LOGON_NEW_CREDENTIALS,
        LOGON_FAILURE,
        INVALID_USER,
        SESSION_OPEN,
        SESSION_CLOSE,
        RUN_AS,
        SWITCH_USER,
        SPECIAL_PRIVILEGES,
        EXPLICIT_CREDENTIALS,
        PROCESS_START,
        ACCOUNT_CREATED,
        GROUP_MEMBER_ADDED,
        USB_CONNECT,
        USB_DISCONNECT,
        FILE_OPEN,
        FILE_WRITE,
        FILE_COPY,
        FILE_DELETE,
        FILE_COPY_REMOVABLE,
        EMAIL_SEND,
        EMAIL_VIEW,
        HTTP_VISIT,
        HTTP_DOWNLOAD,
        HTTP_UPLOAD,
        AUTH,
        CONNECT,
    }
)

SUCCESS = "success"
FAILURE = "failure"
