"""The browser/device table: real user-agent strings (and userAgentData brands) and what they mean."""

from __future__ import annotations

import pytest

from interactive_gym.screening.browsers import Browser, identify

CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
        "Safari/537.36 Edg/124.0.2478.51")
OPERA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
         "Safari/537.36 OPR/106.0.0.0")
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.4 Safari/605.1.15")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.4 Mobile/15E148 Safari/604.1")
SAFARI_IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/16.6 Mobile/15E148 Safari/604.1")
CHROME_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1")
FIREFOX_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "FxiOS/125.0 Mobile/15E148 Safari/605.1.15")
CHROME_ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/124.0.0.0 Mobile Safari/537.36")
CHROME_ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/124.0.0.0 Safari/537.36")
SAMSUNG = ("Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) "
           "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36")
EDGE_ANDROID = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
                "Mobile Safari/537.36 EdgA/124.0.2478.64")
KINDLE = ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 "
          "like Chrome/124.0.6367.82 Safari/537.36")

CASES = [
    # (user agent, brands, ua_mobile, touch points) -> (family, version, device)
    ((CHROME_LINUX, [], None, 0), ("chrome", 124, "desktop")),
    ((HEADLESS, [], None, 0), ("chrome", 156, "desktop")),
    ((EDGE, [], None, 0), ("edge", 124, "desktop")),
    ((OPERA, [], None, 0), ("opera", 106, "desktop")),
    ((FIREFOX, [], None, 0), ("firefox", 125, "desktop")),
    ((FIREFOX_ANDROID, [], None, 5), ("firefox", 125, "phone")),
    ((SAFARI_MAC, [], None, 0), ("safari", 17, "desktop")),
    # iPadOS Safari asks for desktop sites and says "Macintosh"; only its touch points give it away.
    ((SAFARI_MAC, [], None, 5), ("safari", 17, "tablet")),
    ((SAFARI_IPHONE, [], None, 5), ("safari", 17, "phone")),
    ((SAFARI_IPAD, [], None, 5), ("safari", 16, "tablet")),
    ((CHROME_IOS, [], None, 5), ("chrome", 124, "phone")),
    ((FIREFOX_IOS, [], None, 5), ("firefox", 125, "phone")),
    ((CHROME_ANDROID_PHONE, [], None, 5), ("chrome", 124, "phone")),
    ((CHROME_ANDROID_TABLET, [], None, 5), ("chrome", 124, "tablet")),
    ((SAMSUNG, [], None, 5), ("samsung", 24, "phone")),
    ((EDGE_ANDROID, [], None, 5), ("edge", 124, "phone")),
    ((KINDLE, [], None, 5), ("chrome", 124, "tablet")),
    # userAgentData brands win over the (frozen) string; GREASE brands are ignored.
    ((CHROME_LINUX, ["Not-A.Brand/99", "Chromium/126", "Google Chrome/126"], False, 0), ("chrome", 126, "desktop")),
    ((EDGE, ["Microsoft Edge/125", "Not-A.Brand/99", "Chromium/125"], False, 0), ("edge", 125, "desktop")),
    ((OPERA, ["Chromium/120", "Opera/107", "Not A(Brand/8"], False, 0), ("opera", 107, "desktop")),
    ((CHROME_LINUX, ["Not A(Brand/8", "Chromium/132"], False, 0), ("chrome", 132, "desktop")),  # Brave, Vivaldi...
    # userAgentData.mobile marks a phone even when the string was reduced to a desktop-looking one.
    ((CHROME_LINUX, ["Chromium/126"], True, 5), ("chrome", 126, "phone")),
    # Brands that carry nothing usable fall back to the string.
    ((FIREFOX, ["Not-A.Brand/99", "nonsense"], None, 0), ("firefox", 125, "desktop")),
    (("", [], None, 0), ("unknown", None, "desktop")),
    (("curl/8.5.0", [], None, 0), ("unknown", None, "desktop")),
]


@pytest.mark.parametrize(("given", "expected"), CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_the_table(given: tuple, expected: tuple) -> None:
    user_agent, brands, ua_mobile, touch = given
    assert identify(user_agent, brands, ua_mobile, touch) == Browser(*expected)
