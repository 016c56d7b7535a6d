"""Scrapy settings for copyhound crawls.

copyhound's own settings share the COPYHOUND_ prefix; every one can be overridden
from the environment (`COPYHOUND_DB`) or by the crawl worker.
"""

BOT_NAME = "copyhound"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = "copyhound/0.1 (+https://github.com/copyhound/copyhound; republication monitor)"
ROBOTSTXT_OBEY = True

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_TIMEOUT = 20
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 2
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]

AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0

TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "WARNING"

ITEM_PIPELINES = {
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
