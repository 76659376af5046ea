"""The shared action vocabulary: every parser maps its log's verbs onto these names.

Features select events by these strings, so a new log format only has to map into them.
"""

from __future__ import annotations

# Sessions on a machine (CERT logon.csv, Windows 4624/4634, sshd accepted).
LOGON = "logon"
LOGOFF = "logoff"
# A refused logon attempt (sshd Failed / Invalid user / preauth close, Windows 4625): kept
# apart from LOGON so that logon counts and hours are not inflated by brute force.
LOGON_FAILURE = "logon_failure"
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
        LOGON_FAILURE,
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
