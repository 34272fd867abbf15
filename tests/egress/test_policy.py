"""The allowlist's patterns and the addresses that are never reached."""

from __future__ import annotations

import ipaddress

import pytest

from channelcoder.egress.policy import Policy, forbidden, parse_pattern
from channelcoder.errors import ConfigError


def test_patterns_match_by_host_and_port() -> None:
    policy = Policy.build(["*.pypi.org", "example.com", "git.example.com:8443",
                           "127.0.0.1:8765", "[::1]:9000"], api_hosts=["api.anthropic.com"])
    assert policy.allows("api.anthropic.com", 443)
    assert policy.allows("files.pypi.org", 443) and policy.allows("a.b.pypi.org", 80)
    assert not policy.allows("pypi.org", 443)  # a wildcard is for subdomains only
    assert not policy.allows("evilpypi.org", 443)
    assert policy.allows("Example.COM.", 80) and not policy.allows("example.com", 22)
    assert policy.allows("git.example.com", 8443) and not policy.allows("git.example.com", 443)
    assert policy.allows("127.0.0.1", 8765) and policy.allows("[::1]", 9000)
    assert policy.describe()[:2] == ["api.anthropic.com", "*.pypi.org"]
    assert "[::1]:9000" in policy.describe()


def test_the_registries_preset() -> None:
    policy = Policy.build(["registries"])
    for host in ("pypi.org", "files.pythonhosted.org", "registry.npmjs.org", "deb.debian.org",
                 "security.debian.org", "crates.io", "static.crates.io", "github.com",
                 "codeload.github.com", "objects.githubusercontent.com",
                 "raw.githubusercontent.com"):
        assert policy.allows(host, 443), host
    assert not policy.allows("gist.github.com", 443)


@pytest.mark.parametrize("text", ["", "exa mple.com", "http://example.com", "a@b.com",
                                  "*example.com", "ex*ample.com", "example.com:http",
                                  "example.com:0", "example.com:70000", "[::1]x"])
def test_a_bad_pattern_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_pattern(text)


@pytest.mark.parametrize("address, allowed", [
    ("93.184.216.34", True), ("2606:2800:220:1::1", True), ("127.0.0.1", False),
    ("127.8.8.8", False), ("::1", False), ("10.0.0.1", False), ("172.16.0.1", False),
    ("192.168.0.1", False), ("100.64.0.1", False), ("100.127.255.254", False),
    ("169.254.169.254", False), ("fd00:ec2::254", False), ("fe80::1", False),
    ("fc00::1", False), ("0.0.0.0", False), ("::", False), ("224.0.0.251", False),
    ("ff02::1", False), ("::ffff:192.168.0.1", False), ("::ffff:8.8.8.8", True),
    ("64:ff9b::7f00:1", False), ("240.0.0.1", False),
])
def test_forbidden_addresses(address: str, allowed: bool) -> None:
    assert (forbidden(ipaddress.ip_address(address)) is None) is allowed
