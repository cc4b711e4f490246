"""Sending one email through the configured SMTP account ([smtp]): alert emails, the digest, purchase orders.

One connection per email: the box sends a handful a day, and a connection kept open would only go stale
between them. Every SMTP or network failure becomes a `MailError` naming the server and what went wrong, so
the delivery log and the CLI say why, never a traceback.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from appliance.config.schema import SmtpConfig
from appliance.errors import ApplianceError

logger = logging.getLogger(__name__)


class MailError(ApplianceError):
    code = "mail_failed"
    http_status = 502


def build_message(smtp: SmtpConfig, to: Sequence[str], subject: str, text: str,
                  attachments: Sequence[tuple[str, bytes, str]] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message.set_content(text)
    for filename, content, mime_type in attachments:
        maintype, _, subtype = mime_type.partition("/")
        if not subtype:
            raise ValueError(f"attachment {filename!r}: MIME type {mime_type!r} is not type/subtype")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    if smtp.security == "ssl":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_s,
                                context=ssl.create_default_context())
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
    if smtp.security == "starttls":
        try:
            client.starttls(context=ssl.create_default_context())
        except BaseException:
            client.close()
            raise
    return client


def send_email(smtp: SmtpConfig, to: Sequence[str], subject: str, text: str,
               attachments: Sequence[tuple[str, bytes, str]] = ()) -> None:
    """Send one plain-text email (with attachments as MIME parts) to every address of `to`."""
    recipients = [address for address in to if address]
    if not recipients:
        raise MailError("no recipient address given", field="to")
    message = build_message(smtp, recipients, subject, text, attachments)
    server = f"{smtp.host}:{smtp.port}"
    try:
        client = _connect(smtp)
        try:
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            refused = client.send_message(message, to_addrs=recipients)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except smtplib.SMTPAuthenticationError as error:
        raise MailError(f"SMTP server {server} refused the login of {smtp.username!r}: {_reply(error)}",
                        server=server) from None
    except smtplib.SMTPRecipientsRefused as error:
        refusals = "; ".join(f"{address}: {_reply_of(*reply)}" for address, reply in error.recipients.items())
        raise MailError(f"SMTP server {server} refused every recipient ({refusals})", server=server) from None
    except smtplib.SMTPNotSupportedError as error:
        raise MailError(f"SMTP server {server} does not support {error} (check [smtp] security)",
                        server=server) from None
    except smtplib.SMTPResponseException as error:
        raise MailError(f"SMTP server {server} answered {_reply(error)}", server=server) from None
    except smtplib.SMTPException as error:
        raise MailError(f"SMTP server {server}: {error}", server=server) from None
    except ssl.SSLError as error:
        raise MailError(f"TLS with SMTP server {server} failed: {error.reason or error} "
                        "(check [smtp] security and port)", server=server) from None
    except socket.timeout:
        raise MailError(f"SMTP server {server} did not answer within {smtp.timeout_s:g} s", server=server) from None
    except OSError as error:
        raise MailError(f"cannot reach SMTP server {server}: {error.strerror or error}", server=server) from None
    if refused:
        # Some recipients got it: a retry would send them a second copy, so this counts as sent.
        logger.warning("SMTP server %s refused some recipients: %s", server, ", ".join(refused))
    logger.info("email %r sent to %d recipient(s) via %s", subject, len(recipients), server)


def _reply(error: smtplib.SMTPResponseException) -> str:
    return _reply_of(error.smtp_code, error.smtp_error)


def _reply_of(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()
