"""POSTing an alert to a [[webhook]]: the stored JSON payload, byte for byte, with headers a receiver can trust.

- `X-Appliance-Delivery`: the delivery's id. A retry after a lost answer sends the same id, so the receiver
  drops what it has seen (delivery is at least once; exactly once is the receiver's dedup on this id).
- `X-Appliance-Timestamp` and `X-Appliance-Signature: sha256=<hex>`: HMAC-SHA256 with the webhook's secret
  over `<timestamp>.<body>`. The timestamp inside the signed text lets a receiver refuse old replays.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime

import requests

from appliance import clock
from appliance.config.schema import WebhookConfig
from appliance.config.secrets import read_secret
from appliance.errors import ApplianceError

logger = logging.getLogger(__name__)


class WebhookError(ApplianceError):
    code = "webhook_failed"
    http_status = 502


def secret_of(hook: WebhookConfig) -> str | None:
    if not hook.secret_credential:
        return None
    env = "APPLIANCE_WEBHOOK_" + hook.name.upper().replace("-", "_")
    return read_secret(hook.secret_credential, env=env)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def post_webhook(hook: WebhookConfig, delivery_id: int, body: str, now: datetime | None = None) -> int:
    """POST `body` to the hook; returns the HTTP status. Raises WebhookError on a non-2xx answer or no answer."""
    data = body.encode("utf-8")
    timestamp = str(int((now or clock.utcnow()).timestamp()))
    headers = {"Content-Type": "application/json", "X-Appliance-Delivery": str(delivery_id),
               "X-Appliance-Timestamp": timestamp}
    if hook.secret_credential:
        secret = secret_of(hook)
        if secret is None:
            # Sending unsigned would teach the receiver to accept unsigned posts.
            raise WebhookError(f"webhook {hook.name}: credential {hook.secret_credential!r} is not set "
                               f"(file in $CREDENTIALS_DIRECTORY or $APPLIANCE_WEBHOOK_"
                               f"{hook.name.upper().replace('-', '_')})", webhook=hook.name)
        headers["X-Appliance-Signature"] = signature(secret, timestamp, data)
    try:
        with requests.Session() as session:
            response = session.post(hook.url, data=data, headers=headers, timeout=hook.timeout_s,
                                    allow_redirects=False)
            response.close()
    except requests.Timeout:
        raise WebhookError(f"webhook {hook.name}: no answer from {_host(hook.url)} within {hook.timeout_s:g} s",
                           webhook=hook.name) from None
    except requests.ConnectionError as error:
        raise WebhookError(f"webhook {hook.name}: cannot connect to {_host(hook.url)}: {_root(error)}",
                           webhook=hook.name) from None
    except requests.RequestException as error:
        raise WebhookError(f"webhook {hook.name}: {_root(error)}", webhook=hook.name) from None
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"webhook {hook.name}: {_host(hook.url)} answered HTTP {response.status_code} "
                           f"{response.reason or ''}".rstrip(), webhook=hook.name, status=response.status_code)
    logger.info("webhook %s: delivery %s accepted (HTTP %s)", hook.name, delivery_id, response.status_code)
    return response.status_code


def _host(url: str) -> str:
    # The URL's path and query may carry a token (chat tools put one there): logs and errors name the host only.
    return requests.utils.urlparse(url).netloc or url


def _root(error: Exception) -> str:
    # The innermost cause ("[Errno 111] Connection refused") reads better than urllib3's wrapper, which also
    # repeats the URL's path.
    cause: BaseException = error
    for _ in range(10):
        if cause.__context__ is None:
            break
        cause = cause.__context__
    text = str(cause) or type(cause).__name__
    return text[:300]
