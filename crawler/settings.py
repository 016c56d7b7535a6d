"""Scrapy settings for copyhound crawls.

copyhound's own settings share the COPYHOUND_ prefix; every one can be overridden
from the environment (`COPYHOUND_DB`) or by the crawl worker.
"""

import os

BOT_NAME = "copyhound"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Where site operators reach whoever runs this crawler: put your own page or address.
COPYHOUND_CONTACT_URL = os.environ.get("COPYHOUND_CONTACT_URL", "https://github.com/copyhound/copyhound")
# The spider rebuilds this from COPYHOUND_CONTACT_URL (see StorySpider.update_settings).
USER_AGENT = f"copyhound/0.1 (+{COPYHOUND_CONTACT_URL}; republication monitor)"
ROBOTSTXT_OBEY = True

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_TIMEOUT = 20  # the whole response, so a server trickling bytes is cut off too
DNS_TIMEOUT = 10
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 2
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
METAREFRESH_MAXDELAY = 30

DOWNLOADER_MIDDLEWARES = {
    # Scrapy's retry, waiting as long as Retry-After asks (or backing off) before retrying.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.RetryAfterMiddleware": 550,
    "crawler.middlewares.ConditionalGetMiddleware": 560,
}

AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0

TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "WARNING"

ITEM_PIPELINES = {
    "crawler.pipelines.FetchOutcomePipeline": 50,
    "crawler.pipelines.ExtractPipeline": 100,
    "crawler.pipelines.StorePipeline": 200,
}
EXTENSIONS = {
    "crawler.extensions.ProgressReporter": 500,
}

# copyhound's own settings (set by the crawl worker)
COPYHOUND_DB = None  # SQLAlchemy URL; required
COPYHOUND_STORY_ID = None  # the story being crawled; always verified against each page
COPYHOUND_RUN_ID = None  # the crawl_runs row this crawl reports into
COPYHOUND_PROGRESS_ENABLED = False  # JSON progress lines on stdout, read by the parent

# Politeness and bounds of one crawl
COPYHOUND_RETRY_AFTER_MAX = 300  # seconds; a server asking to wait longer is not retried this run
COPYHOUND_RETRY_BACKOFF = 1.0  # seconds before the first retry without Retry-After; doubles per retry
COPYHOUND_MAX_PER_PATTERN = 100  # pages per URL shape (digits normalised) found by the site crawl
COPYHOUND_MAX_SITEMAPS = 50  # sitemaps opened per sitemap index source
COPYHOUND_CONDITIONAL_GET_ENABLED = True  # If-None-Match / If-Modified-Since for known pages
