"""Web destination categories that insider-threat work watches, as plain domain lists.

UEBA products ship URL categories (job search, leak and whistleblowing sites, personal cloud
storage and file sharing) because the published insider scenarios go through them: the CERT
scenario descriptions name job-search browsing before a theft and uploads to leak sites. These
lists are deliberately short and well known; a deployment extends them.
"""

from __future__ import annotations

#: Dedicated job boards. General sites with a jobs section (LinkedIn, Craigslist) are left
#: out: most of their visits are not job search, and by domain alone they cannot be told apart.
JOB_SEARCH: tuple[str, ...] = (
    "careerbuilder.com",
    "dice.com",
    "glassdoor.com",
    "indeed.com",
    "jobhuntersbible.com",
    "monster.com",
    "simplyhired.com",
    "hotjobs.yahoo.com",
    "job-hunt.org",
    "careerone.com",
)

LEAK_SITES: tuple[str, ...] = (
    "wikileaks.org",
    "cryptome.org",
    "leaksource.info",
    "pastebin.com",
    "ghostbin.com",
)

CLOUD_STORAGE: tuple[str, ...] = (
    "dropbox.com",
    "drive.google.com",
    "box.com",
    "mega.nz",
    "mediafire.com",
    "wetransfer.com",
    "onedrive.live.com",
    "sendspace.com",
)

#: File names of offensive tooling that has no business on an office machine (credential
#: dumpers, keyloggers, remote-execution and recon kits). A regular expression over file names.
HACKING_TOOLS_PATTERN = (
    r"keylog|mimikatz|psexec|procdump|lazagne|pwdump|gsecdump|wce\.exe|hashcat|"
    r"john.?the.?ripper|cain.?abel|meterpreter|metasploit|cobalt.?strike|bloodhound|"
    r"sharphound|rubeus|kerberoast|netcat|nc64\.exe"
)
