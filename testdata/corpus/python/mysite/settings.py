import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "d6Y1FCK_mY8bYtB6Yso"

DEBUG = True
TEMPLATE_DEBUG = os.environ.get("TEMPLATE_DEBUG") == "1"

ALLOWED_HOSTS = ["shop.internal.test"]

CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "shop",
        "PASSWORD": os.environ["SHOP_DB_PASSWORD"],
        "HOST": "db",
    }
}

EMAIL_HOST_PASSWORD = "AtOp_ZqEka3UuS&0Pk0ij"
PASSWORD_RESET_TIMEOUT = 3600
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]

AWS_ACCESS_KEY_ID = "AKIAZ5MNRO7LJGPY4DZY"
AWS_SECRET_ACCESS_KEY = "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"
AWS_STORAGE_BUCKET_NAME = "shop-media"
