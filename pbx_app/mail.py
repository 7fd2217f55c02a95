"""Outgoing e-mail over plain SMTP (the lab's sink; a relay in production). Only the outbox's
sender (pbx_app.outbox) calls it, never a request inside a transaction."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Protocol


class MailNotSent(Exception):
    """The relay refused the message or could not be reached; the outbox retries it."""


# A file that goes along with a mail: (file name, MIME type, content).
Attachment = tuple[str, str, bytes]


class Mailer(Protocol):
    def send(
        self, to: str, subject: str, body: str, attachment: Attachment | None = None
    ) -> None: ...


class SmtpMailer:
    def __init__(self, host: str, port: int, mail_from: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.mail_from, self.timeout = host, port, mail_from, timeout

    def send(self, to: str, subject: str, body: str, attachment: Attachment | None = None) -> None:
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = to
        msg["Subject"] = subject
        msg.set_content(body)
        if attachment is not None:
            name, mime, content = attachment
            main, _, sub = mime.partition("/")
            msg.add_attachment(content, maintype=main, subtype=sub, filename=name)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSent(f"{type(exc).__name__}: {exc}") from exc
