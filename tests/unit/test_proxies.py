"""The client's address behind reverse proxies (``OMNIGATE_TRUSTED_PROXIES``)."""

from __future__ import annotations

import ipaddress

from gateway.proxies import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def test_a_direct_client_is_its_own_address_whatever_it_forwards() -> None:
    assert client_address("203.0.113.5", "198.51.100.1", PROXIES) == "203.0.113.5"


def test_behind_two_trusted_proxies_the_nearest_untrusted_hop_is_the_client() -> None:
    forwarded = "198.51.100.1, 203.0.113.5, 10.0.0.7"  # forged, client, inner proxy
    assert client_address("10.0.0.2", forwarded, PROXIES) == "203.0.113.5"


def test_a_proxy_that_forwards_nothing_is_the_client() -> None:
    assert client_address("10.0.0.2", None, PROXIES) == "10.0.0.2"


def test_without_trusted_proxies_forwarded_addresses_are_ignored() -> None:
    assert client_address("10.0.0.2", "203.0.113.5", ()) == "10.0.0.2"
