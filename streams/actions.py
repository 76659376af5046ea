"""The shared action vocabulary: every parser maps its log's verbs onto these names.

Features select events by these strings, so a new log format only has to map into them.
"""

from __future__ import annotations

# Sessions on a machine (CERT logon.csv, Windows 4624/4634, sshd accepted).
LOGON = "logon"
LOGOFF = "logoff"
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
