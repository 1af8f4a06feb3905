"""Email over SMTP: multipart text + HTML, one-click unsubscribe headers, Message-ID and an idempotency header."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from segmint.channels.base import DeliveryResult, OutboundMessage

IDEMPOTENCY_HEADER = "X-Segmint-Message-Id"


class SmtpChannel:
    """Sends through one SMTP server (plain, STARTTLS or implicit TLS)."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        sender: str,
        sender_name: str = "",
        username: str = "",
        password: str = "",
        security: str = "starttls",
        timeout: float = 30.0,
        unsubscribe_mailto: str = "",
        ca_file: str = "",
    ) -> None:
        self.host, self.port, self.sender, self.sender_name = host, port, sender, sender_name
        self.username, self.password, self.security, self.timeout = username, password, security, timeout
        self.unsubscribe_mailto = unsubscribe_mailto
        self.ca_file = ca_file

    def _tls(self) -> ssl.SSLContext:
        """Certificate-verifying TLS context (system CAs, or `ca_file` for a private relay)."""
        return ssl.create_default_context(cafile=self.ca_file or None)

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message that would be sent (text part first, HTML alternative second)."""
        mail = EmailMessage()
        mail["From"] = formataddr((self.sender_name, self.sender)) if self.sender_name else self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.sender.rsplit("@", 1)[-1] or None
        mail["Message-ID"] = make_msgid(idstring=re.sub(r"[^A-Za-z0-9.-]", "-", message.message_id)[:64], domain=domain)
        mail[IDEMPOTENCY_HEADER] = message.message_id
        if message.campaign_id:
            mail["X-Segmint-Campaign-Id"] = message.campaign_id
        targets = []
        if message.unsubscribe_url:
            targets.append(f"<{message.unsubscribe_url}>")
        if self.unsubscribe_mailto:
            targets.append(f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe>")
        if targets:
            mail["List-Unsubscribe"] = ", ".join(targets)
        if message.unsubscribe_url:  # RFC 8058 one-click needs an https URL
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.text or "", subtype="plain", charset="utf-8")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        return mail

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver over SMTP; 4xx replies and connection errors are retryable, 5xx are not."""
        if not message.to:
            return DeliveryResult("refused", error="no email address")
        mail = self.build(message)
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._tls()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=self._tls())
                if self.username:
                    client.login(self.username, self.password)
                refused = client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return DeliveryResult("failed", error=f"recipient refused: {code} {reply!r}", retryable=400 <= code < 500)
        except smtplib.SMTPResponseException as exc:
            return DeliveryResult(
                "failed", error=f"SMTP {exc.smtp_code} {exc.smtp_error!r}", retryable=400 <= exc.smtp_code < 500
            )
        except (smtplib.SMTPException, OSError) as exc:
            return DeliveryResult("failed", error=f"SMTP {self.host}:{self.port}: {exc}", retryable=True)
        if refused:
            return DeliveryResult("failed", error=f"recipient refused: {refused}", retryable=False)
        return DeliveryResult("sent", provider_message_id=mail["Message-ID"])
