"""Django settings, read from the environment (see .env.example and DESIGN §2)."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff

from tradeapp.env import env_bool, env_float, env_int, env_list, env_prices, env_str
from tradeapp.secret_key import install_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -------------------------------------------------------------------------------------

# Off unless asked for: its error pages show settings and request bodies.
DEBUG = env_bool("DEBUG", default=False)
# What this install keeps on disk (its generated SECRET_KEY); never served, never committed.
STATE_DIR = Path(env_str("STATE_DIR", str(BASE_DIR / "var")))
# Without SECRET_KEY, a random key of this install's own (never a public one); several hosts
# serving one site must share a configured SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY") or install_secret_key(STATE_DIR)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "debates",
    "streaming",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tradeapp.urls"
ASGI_APPLICATION = "tradeapp.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the runner write while daphne serves reads; transactions take
    # the write lock when they begin (BEGIN IMMEDIATE), so one that reads and then writes waits
    # for another writer instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
    # Tests get a file, not Django's shared-cache in-memory database: the runner writes from its
    # own thread, and shared-cache table locks fail at once ("database table is locked") where
    # a file's busy timeout waits.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"tradeapp-test-{os.getpid()}.sqlite3")
    }
# Django's psycopg pool (PostgreSQL only; DB_POOL_MAX_SIZE 0 = none, the default outside
# tradeapp.serve). Under ASGI each request's sync code runs in a thread of its own, so persistent
# connections (DB_CONN_MAX_AGE) would leave one open connection per finished request thread until
# PostgreSQL refuses more ("too many clients"); the pool bounds them and keeps them warm.
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 0)
# With CONN_HEALTH_CHECKS on, Django gives the pool psycopg's check: a connection PostgreSQL
# terminated is dropped when it is handed out, not used.
if DB_POOL_MAX_SIZE > 0 and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env_float("DB_POOL_TIMEOUT_S", 10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache --------------------------------------------------------------

# One Redis (REDIS_URL), or several nodes (REDIS_URLS, which then wins): the channel layer shards
# its channels and groups over them, and the streaming layer keeps each debate's keys on one node
# (streaming.backends.node_url); the cache uses the first.
REDIS_URLS = env_list("REDIS_URLS", [])
REDIS_URL = REDIS_URLS[0] if REDIS_URLS else env_str("REDIS_URL")
# How long a debate rides out a Redis or database outage (retries with backoff, tradeapp.retry)
# before it fails.
SERVICE_RETRY_LIMIT_S = env_float("SERVICE_RETRY_LIMIT_S", 30.0)

# A pooled connection that Redis closed (a restart) is reopened and the command retried once or
# twice, instead of failing the first command on each stale connection (tradeapp.retry rides out
# longer outages).
REDIS_RECONNECT = {
    "retry": AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2),
    "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": url, "max_connections": 1000, **REDIS_RECONNECT}
                    for url in REDIS_URLS or [REDIS_URL]
                ],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "tradeapp"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tradeapp",  # STREAMING_KEY_PREFIX once read (the Streaming section)
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ---------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

# --- Internationalisation, static files -------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- REST framework, JWT, OpenAPI ----------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["djangorestframework_camel_case.render.CamelCaseJSONRenderer"],
    # JSON nested deeper than API_MAX_JSON_DEPTH is refused with 400 before anything walks it.
    "DEFAULT_PARSER_CLASSES": ["tradeapp.parsers.BoundedCamelCaseJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "debates.pagination.DebatePagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 20),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # A database or Redis that is down answers 503, never 500 (tradeapp.api_errors).
    "EXCEPTION_HANDLER": "tradeapp.api_errors.api_exception_handler",
    "JSON_UNDERSCOREIZE": {"no_underscore_before_number": True},
    # Sign-in attempts (tradeapp.auth_api): per client IP, and per username from any IP.
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env_str("LOGIN_RATE_PER_IP", "30/minute"),
        "login_username": env_str("LOGIN_RATE_PER_USERNAME", "10/minute"),
        # Requests with a share link's token (debates.api), per client IP, right or wrong.
        "share": env_str("SHARE_RATE_PER_IP", "120/minute"),
        # Moderator controls (pause, resume, ask, conclude) per user (debates.api).
        "debate_control": env_str("DEBATE_CONTROL_RATE", "30/minute"),
        # Audience votes (debates.api.DebateVoteApi): per user.
        "votes": env_str("VOTE_RATE", "30/minute"),
    },
}
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1)),
    "ALGORITHM": "HS256",
    "UPDATE_LAST_LOGIN": False,
    # Each refresh returns a new refresh token and revokes the old one; sign-out revokes too.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "TOKEN_REFRESH_SERIALIZER": "tradeapp.auth_api.RefreshSerializer",
}

# The schema and its docs pages: public, or for staff only (signed in to the admin, or a
# staff user's bearer token). Public in DEBUG unless said otherwise.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", DEBUG)

SPECTACULAR_SETTINGS = {
    "TITLE": "tradeapp API",
    "DESCRIPTION": "Live AI bull-vs-bear debates: create, start, cancel and read debates.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "CAMELIZE_NAMES": False,
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if API_DOCS_PUBLIC
        else "rest_framework.permissions.IsAdminUser"
    ],
    "SERVE_AUTHENTICATION": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name per choice set used by several fields (a vote's side and phase).
    "ENUM_NAME_OVERRIDES": {
        "VoteSideEnum": "debates.models.VoteSide",
        "VotePhaseEnum": "debates.models.VotePhase",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tradeapp.schema.document_error_responses",
    ],
}

# --- Debates (the debates app: engine, runs, demo login) ----------------------------------------

DEBATE_LLM = env_str("DEBATE_LLM", "offline")
if DEBATE_LLM not in {"offline", "openai"}:
    raise ImproperlyConfigured(f"DEBATE_LLM must be 'offline' or 'openai', got {DEBATE_LLM!r}")
OFFLINE_LLM_TOKENS_PER_S = env_float("OFFLINE_LLM_TOKENS_PER_S", 40.0)
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT_S = env_float("OPENAI_TIMEOUT_S", 30.0)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 2)
MARKET_DATA_PROVIDER = env_str("MARKET_DATA_PROVIDER", "sample")
MARKET_DATA_URL = env_str("MARKET_DATA_URL")
# Takeover: a run heartbeats every DEBATE_HEARTBEAT_S; a debate silent for DEBATE_STALE_AFTER_S
# is taken over by the first janitor sweep (every DEBATE_SWEEP_S in each serving process): within
# stale + sweep = 8 s of a SIGKILL by default, one sweep after a graceful shutdown (which releases).
DEBATE_HEARTBEAT_S = env_float("DEBATE_HEARTBEAT_S", 2.0)
DEBATE_STALE_AFTER_S = env_float("DEBATE_STALE_AFTER_S", 6.0)
DEBATE_SWEEP_S = env_float("DEBATE_SWEEP_S", 2.0)
# A turn whose model failed mid-way (dropped or malformed stream, timeout, 429/5xx past the
# client's own OPENAI_MAX_RETRIES) is tried again this many times, with backoff, before the debate
# fails.
DEBATE_LLM_TURN_RETRIES = env_int("DEBATE_LLM_TURN_RETRIES", 2)
# 0: derived from the LLM timeouts (debates.runs.run.idle_timeout_s).
DEBATE_IDLE_TIMEOUT_S = env_float("DEBATE_IDLE_TIMEOUT_S", 0.0)
DEMO_USERNAME = env_str("DEMO_USERNAME", "demo")
# Per user: debates created in any 24 hours, and running at once (0: no limit). Staff are exempt.
DEBATES_PER_USER_PER_DAY = env_int("DEBATES_PER_USER_PER_DAY", 50)
DEBATES_RUNNING_PER_USER = env_int("DEBATES_RUNNING_PER_USER", 3)
# Moderator controls: a debate paused longer than this concludes by itself (the verdict).
DEBATE_PAUSE_MAX_S = env_float("DEBATE_PAUSE_MAX_S", 600.0)
# Usage and cost (debates.costs): US dollars per million tokens per model, merged over these
# defaults (OpenAI's list prices); a model in neither has an unknown cost, never zero.
DEFAULT_LLM_PRICES = {
    "offline-analyst": {"prompt": 0, "completion": 0},
    "gpt-4o-mini": {"prompt": 0.15, "completion": 0.60},
    "gpt-4o": {"prompt": 2.50, "completion": 10.00},
    "gpt-4.1": {"prompt": 2.00, "completion": 8.00},
    "gpt-4.1-mini": {"prompt": 0.40, "completion": 1.60},
    "gpt-4.1-nano": {"prompt": 0.10, "completion": 0.40},
    "o4-mini": {"prompt": 1.10, "completion": 4.40},
    "o3-mini": {"prompt": 1.10, "completion": 4.40},
    "gpt-3.5-turbo": {"prompt": 0.50, "completion": 1.50},
}
LLM_PRICES = {**DEFAULT_LLM_PRICES, **env_prices("LLM_PRICES")}
# Per non-staff user, over any 24 hours (0: no limit): past it, create and start get 429, and a
# run concludes once the rest of it is used.
USER_DAILY_TOKEN_BUDGET = env_int("USER_DAILY_TOKEN_BUDGET", 0)
USER_DAILY_COST_BUDGET = env_float("USER_DAILY_COST_BUDGET", 0.0)
# The live usage meter (DEBATE/USAGE): at each argument's end and every this many tokens.
USAGE_EVERY_N_TOKENS = env_int("USAGE_EVERY_N_TOKENS", 25)
# Audience votes: the after-verdict vote stays open this long after the debate ends (0: no end).
VOTE_AFTER_WINDOW_S = env_float("VOTE_AFTER_WINDOW_S", 600.0)
# Track record: a verdict is checked this long after it is given (per debate: verdictHorizonS);
# hold is a hit while the return stays within +/- the band, buy above it, sell below it.
VERDICT_HORIZON_S = env_int("VERDICT_HORIZON_S", 24 * 3600)
VERDICT_HOLD_BAND_PCT = env_float("VERDICT_HOLD_BAND_PCT", 1.0)
# Each serving process's janitor resolves due verdicts this often, at most this many a pass.
VERDICT_RESOLVE_INTERVAL_S = env_float("VERDICT_RESOLVE_INTERVAL_S", 30.0)
VERDICTS_RESOLVED_PER_PASS = env_int("VERDICTS_RESOLVED_PER_PASS", 50)

# --- Streaming (the streaming app: WebSocket, event log, coalescing, fan-out) -------------------

WS_ALLOWED_ORIGINS = env_list(
    "WS_ALLOWED_ORIGINS",
    ["http://localhost:8000", "http://127.0.0.1:8000"] if DEBUG else [],
)
WS_QA_TOKEN = env_str("WS_QA_TOKEN")
WS_QA_TOKEN_ALLOW_IN_PRODUCTION = env_bool("WS_QA_TOKEN_ALLOW_IN_PRODUCTION", False)
WS_RATE_LIMIT = env_str("WS_RATE_LIMIT", "10/minute")
WS_TRUSTED_PROXIES = env_int("WS_TRUSTED_PROXIES", 0)
WS_PING_INTERVAL_S = env_float("WS_PING_INTERVAL_S", 30.0)
# Client frames per second per socket, with a burst; past it frames are refused (4429) and a
# socket that keeps on is closed (1008).
WS_CLIENT_FRAMES_PER_S = env_float("WS_CLIENT_FRAMES_PER_S", 5.0)
WS_CLIENT_FRAMES_BURST = env_int("WS_CLIENT_FRAMES_BURST", 20)
# A viewer whose unsent data stays above the limit for the grace period is dropped (it resumes).
WS_SEND_BUFFER_LIMIT_BYTES = env_int("WS_SEND_BUFFER_LIMIT_BYTES", 1024 * 1024)
WS_SEND_BUFFER_GRACE_S = env_float("WS_SEND_BUFFER_GRACE_S", 10.0)
EVENT_LOG_TTL_S = env_int("EVENT_LOG_TTL_S", 3600)
TOKEN_FLUSH_INTERVAL_MS = env_float("TOKEN_FLUSH_INTERVAL_MS", 50.0)
# A large audience gets fewer, larger token frames (streaming.publisher); 0 keeps the interval.
TOKEN_FLUSH_MS_PER_1K_VIEWERS = env_float("TOKEN_FLUSH_MS_PER_1K_VIEWERS", 50.0)
TOKEN_FLUSH_MAX_MS = env_float("TOKEN_FLUSH_MAX_MS", 1000.0)
# Live vote tallies (DEBATE/VOTES): at most one per debate per interval, from each process.
VOTES_TALLY_INTERVAL_MS = env_float("VOTES_TALLY_INTERVAL_MS", 500.0)
# Replays (streaming.replay): a quiet stretch between two events counts as at most this long.
REPLAY_MAX_GAP_S = env_float("REPLAY_MAX_GAP_S", 5.0)
# Namespaces this deployment's Redis keys (event log, seq, audience, rate limits, liveness).
STREAMING_KEY_PREFIX = env_str("STREAMING_KEY_PREFIX", "tradeapp")
# The cache's keys (sign-in throttles, DRF throttles) too: two deployments sharing a Redis never
# count each other's requests.
CACHES["default"]["KEY_PREFIX"] = STREAMING_KEY_PREFIX

# /metrics: for these client IPs (WS_TRUSTED_PROXIES applies), or with the bearer token.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
METRICS_TOKEN = env_str("METRICS_TOKEN")

# --- Serving process (tradeapp.serve, tradeapp.serving) ------------------------------------------

# python -m tradeapp.serve: where daphne listens and how (see that module for why each default).
SERVER_HOST = env_str("HOST", "127.0.0.1")
SERVER_PORT = env_int("PORT", 8000)
SERVER_LISTEN_BACKLOG = env_int("SERVER_LISTEN_BACKLOG", 4096)
SERVER_WS_CONNECT_TIMEOUT_S = env_int("SERVER_WS_CONNECT_TIMEOUT_S", 30)
SERVER_PING_INTERVAL_S = env_int("SERVER_PING_INTERVAL_S", 20)
SERVER_PING_TIMEOUT_S = env_int("SERVER_PING_TIMEOUT_S", 30)
SERVER_ACCESS_LOG = env_bool("SERVER_ACCESS_LOG", True)

# The server's garbage-collector thresholds (tradeapp.gc_tuning).
SERVER_GC_THRESHOLDS = env_list("SERVER_GC_THRESHOLDS", ["50000", "50", "100"])

# --- Security (production) ----------------------------------------------------------------------

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Every page: scripts, styles and connections from this origin only (no inline script
# anywhere); the API docs pages add what their bundles need (tradeapp.urls).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Logging ------------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    # Keep daphne's and Django's own loggers alive (DESIGN §4b).
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Tokens travel in WebSocket query strings: redact them on every handler.
    "filters": {"redact_tokens": {"()": "streaming.redaction.RedactTokenFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "daphne": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
