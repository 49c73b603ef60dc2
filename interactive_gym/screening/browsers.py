"""Which browser and device a page runs in, from what the page reports. Pure: no I/O.

The page reports raw facts only: ``navigator.userAgentData`` brands and its ``mobile`` flag where the browser
has them (Chromium-based browsers), the user-agent string, and ``navigator.maxTouchPoints``. This module
decides what they mean, so the rule lives in one place (here) and is tested in pytest against
``tests/unit/test_screening_browsers.py``'s table of real user-agent strings.

Brands are preferred over the user-agent string because Chromium freezes parts of that string; the string
is the fallback for Firefox and Safari, which have no ``userAgentData``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Browser families a researcher may name in AllowedBrowsers.
FAMILIES = ("chrome", "edge", "firefox", "safari", "opera", "samsung")
UNKNOWN = "unknown"

# userAgentData brand names -> family, most specific first ("Chromium" is in every Chromium browser's list
# and means Chrome only when no more specific brand is there).
_BRANDS = (("Microsoft Edge", "edge"), ("Opera", "opera"), ("Samsung Internet", "samsung"),
           ("Google Chrome", "chrome"), ("Chromium", "chrome"))

# User-agent patterns, in order: the first that matches decides. Edge, Opera and Samsung Internet also say
# "Chrome/..." and every Chromium and iOS browser says "Safari/...", so they come before Chrome and Safari.
_UA_TABLE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)"), "edge"),
    (re.compile(r"\b(?:OPR|OPT|Opera)/(\d+)"), "opera"),
    (re.compile(r"\bSamsungBrowser/(\d+)"), "samsung"),
    (re.compile(r"\bFxiOS/(\d+)"), "firefox"),
    (re.compile(r"\bFirefox/(\d+)"), "firefox"),
    (re.compile(r"\bCriOS/(\d+)"), "chrome"),
    (re.compile(r"\b(?:Headless)?Chrome/(\d+)"), "chrome"),
    (re.compile(r"\bVersion/(\d+)[^ ]* (?:Mobile/\S+ )?Safari/"), "safari"),
)


@dataclass(frozen=True)
class Browser:
    """A page's browser and device.

    Attributes:
        family: One of :data:`FAMILIES` or ``"unknown"``.
        version: Its major version, or None when unknown.
        device: ``"phone"``, ``"tablet"`` or ``"desktop"``.
    """

    family: str
    version: int | None
    device: str


def _from_brands(brands: Sequence[str]) -> tuple[str, int] | None:
    """``("chrome", 120)`` from brand strings ``"Brand/Version"``; GREASE brands ("Not A;Brand") are ignored."""
    parsed: dict[str, int] = {}
    for item in brands:
        name, _, version = item.rpartition("/")
        match = re.match(r"\d+", version)
        if name and match:
            parsed[name] = int(match.group())
    for brand, family in _BRANDS:
        if brand in parsed:
            return family, parsed[brand]
    return None


def _from_user_agent(user_agent: str) -> tuple[str, int | None]:
    for pattern, family in _UA_TABLE:
        match = pattern.search(user_agent)
        if match:
            return family, int(match.group(1))
    return UNKNOWN, None


def device_of(user_agent: str, ua_mobile: bool | None, touch_points: int) -> str:
    """``"phone"``, ``"tablet"`` or ``"desktop"``.

    iPadOS 13+ Safari reports a Mac user agent: a "Macintosh" with more than one touch point is an iPad
    (no Mac has a touch screen). An Android user agent without "Mobile" is a tablet (Google's convention).
    """
    if re.search(r"\biPad\b|\bTablet\b|\bKindle\b|\bSilk/", user_agent):
        return "tablet"
    if re.search(r"\biPhone\b|\biPod\b", user_agent):
        return "phone"
    if "Android" in user_agent:
        return "phone" if "Mobile" in user_agent else "tablet"
    if "Macintosh" in user_agent and touch_points > 1:
        return "tablet"
    if ua_mobile or re.search(r"\bMobi", user_agent):
        return "phone"
    return "desktop"


def identify(user_agent: str, brands: Sequence[str] = (), ua_mobile: bool | None = None,
             touch_points: int = 0) -> Browser:
    """The browser and device a page reported (brands first, else the user-agent string)."""
    found = _from_brands(brands)
    family, version = found if found is not None else _from_user_agent(user_agent)
    return Browser(family, version, device_of(user_agent, ua_mobile, touch_points))
