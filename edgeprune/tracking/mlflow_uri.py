"""Which MLflow tracking server a bench goes to (``--mlflow [URI]``, ``$MLFLOW_TRACKING_URI``), shown without its
password, and the secrets MLflow may send, to keep them out of every message."""

from __future__ import annotations

import importlib.util
import re
from typing import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from ..errors import UsageError

URI_VARIABLE = "MLFLOW_TRACKING_URI"
INSTALL_HINT = "pip install 'edgeprune[mlflow]'"
URI_EXAMPLE = "http://127.0.0.1:5000"
# The schemes MLflow takes as a tracking URI (a database's may name its driver: postgresql+psycopg2).
TRACKING_SCHEMES = frozenset({"http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks",
                              "databricks-uc"})
NETWORK_SCHEMES = frozenset({"http", "https"})
SECRET_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# user:password@ in a URI's authority (the password runs to the authority's last '@'), and a password= parameter.
_USERINFO_PASSWORD = re.compile(r"^(?P<head>(?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?(?P<user>[^/?#@:]*):"
                                r"(?P<password>[^/?#]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)(?<=[?&]password=)[^&#]*")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")

def resolve_tracking_uri(option: str, environ: Mapping[str, str]) -> str:
    """The tracking URI of ``--mlflow [URI]`` (none given: ``$MLFLOW_TRACKING_URI``), checked before the bench
    measures anything, and MLflow with it."""
    uri = option or environ.get(URI_VARIABLE, "")
    if not uri:
        raise UsageError(f"--mlflow: no tracking URI given and {URI_VARIABLE} is not set",
                         hint=f"write --mlflow=URI, e.g. --mlflow={URI_EXAMPLE}")
    if not is_tracking_uri(uri):
        origin = "--mlflow" if option else URI_VARIABLE
        # Most often a path the option took as its value: "bench --mlflow export/".
        hint = ("write --mlflow=URI, or put --mlflow after the paths to bench" if option
                else f"set it to a tracking server's URI, e.g. {URI_EXAMPLE}")
        raise UsageError(f"{origin}: '{shown_uri(uri)}' is not an MLflow tracking URI such as http://HOST:PORT or "
                         "sqlite:///FILE", hint=hint)
    if importlib.util.find_spec("mlflow") is None:
        raise UsageError("--mlflow needs MLflow, which is not installed", hint=INSTALL_HINT)
    return uri


def is_tracking_uri(uri: str) -> bool:
    match = _SCHEME.match(uri)
    if match is None:
        return uri in ("databricks", "databricks-uc")
    scheme = match.group(1).lower().partition("+")[0]
    if scheme not in TRACKING_SCHEMES:
        return False
    if scheme not in NETWORK_SCHEMES:
        return True
    try:
        return bool(urlsplit(uri).hostname)
    except ValueError:  # a malformed address, e.g. an unclosed [IPv6
        return False


def shown_uri(uri: str) -> str:
    """``uri`` as messages show it: without its password."""
    return _QUERY_PASSWORD.sub("***", _USERINFO_PASSWORD.sub(r"\g<head>\g<user>:***@", uri))


def secrets_of(uri: str, environ: Mapping[str, str]) -> set[str]:
    """Every password or token MLflow may send: the URI's, as written and decoded, and those of the environment."""
    userinfo = _USERINFO_PASSWORD.match(uri)
    found = [userinfo.group("password") if userinfo else "", *_QUERY_PASSWORD.findall(uri)]
    found += [environ.get(name, "") for name in SECRET_VARIABLES]
    return {text for secret in found for text in (secret, unquote(secret)) if text}


def scrubbed(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
        text = text.replace(secret, "***")
    return text
