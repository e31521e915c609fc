"""Name and value formats of k8s.io/apimachinery/pkg/util/validation, with kube's messages.

Every check returns a list of messages (empty = valid), exactly as the Go ``Is*`` functions do,
so callers can wrap each one in an ``Invalid`` field error. Regular expressions are compiled once.
"""

from __future__ import annotations

import ipaddress
import re

# the generic name and label rules live in kapi.validation; this module re-exports them under the
# names kube's apimachinery uses (IsDNS1123Label -> is_dns1123_label) and adds the kind-specific ones
from kapi.validation import dns1035_label_errors as is_dns1035_label
from kapi.validation import dns1123_label_errors as is_dns1123_label
from kapi.validation import dns1123_subdomain_errors as is_dns1123_subdomain
from kapi.validation import label_value_errors as is_label_value
from kapi.validation import max_len_error, regex_error
from kapi.validation import qualified_name_errors as is_qualified_name

__reexported__ = (is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
                  max_len_error, regex_error)

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_DNS1123_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")
_CONFIG_KEY = re.compile(f"^{CONFIG_KEY_FMT}$")
_PERCENT = re.compile(f"^{PERCENT_FMT}$")
_PORT_NAME_CHARSET = re.compile("^[-a-z0-9]+$")
_PORT_NAME_LETTER = re.compile("[a-z]")

_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character")






EMPTY_ERROR = "must be non-empty"

# The object-name rule of a kind (``Strategy.name_format`` in kapi.kinds; kube's ``ValidateNameFunc``):
NAME_DNS_SUBDOMAIN = "dns-subdomain"  # most kinds
NAME_DNS_LABEL = "dns-label"  # namespaces
NAME_DNS1035_LABEL = "dns1035-label"  # services
NAME_PATH_SEGMENT = "path-segment"  # RBAC roles and bindings (``system:...`` names)
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL = re.compile(f"^{DNS1035_LABEL_FMT}$")












def is_config_map_key(value: str) -> list[str]:
    """``IsConfigMapKey``: keys of ConfigMap/Secret data."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY.match(value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_valid_port_num(port: object) -> list[str]:
    """``IsValidPortNum``: 1-65535."""
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(port: str) -> list[str]:
    """``IsValidPortName``: an IANA_SVC_NAME (at most 15 characters, a-z0-9 and '-', one letter)."""
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_relaxed_env_var_name(value: str) -> list[str]:
    """``IsRelaxedEnvVarName``: printable ASCII except '=' (the 1.34+ default)."""
    errs = []
    if not value:
        errs.append("environment variable name " + EMPTY_ERROR)
    if any(not (32 <= ord(ch) <= 126) or ch == "=" for ch in value):
        errs.append("a valid environment variable name must consist only of printable ASCII characters other than '='")
    return errs


def is_valid_path_segment_name(value: str) -> list[str]:
    """``path.IsValidPathSegmentName`` (RBAC role names)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    errs = []
    for ch in "/%":
        if ch in value:
            errs.append(f"may not contain '{ch}'")
    return errs


def is_percent(value: str) -> bool:
    """True for ``25%``-style strings (IntOrString percentages)."""
    return bool(_PERCENT.match(value))


def is_ip(value: str) -> bool:
    """True for a literal IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
