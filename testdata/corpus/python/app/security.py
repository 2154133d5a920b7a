import hashlib
import hmac
import requests
import ssl
from Crypto.Cipher import AES
import bcrypt

SIGNING_KEY = b"bed6c31ced2ce19b11c63b5601e6800b"


def hash_password(password: str) -> str:
    return hashlib.sha1(password.encode("utf-8")).hexdigest()


def hash_password_v2(password: str) -> bytes:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12))


def file_checksum(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def legacy_password_check(user, password):
    h = hashlib.md5()
    h.update(password.encode())
    return hmac.compare_digest(h.hexdigest(), user.pw_hash)


def encrypt_blob(key: bytes, blob: bytes) -> bytes:
    cipher = AES.new(key, AES.MODE_ECB)
    return cipher.encrypt(blob)


def encrypt_blob_v2(key: bytes, blob: bytes):
    cipher = AES.new(key, AES.MODE_GCM)
    return cipher.encrypt_and_digest(blob)


def sign(payload: bytes) -> str:
    return hmac.new(b"WAeCx6VZza##BU2s7w0Uz9?Q", payload, hashlib.sha256).hexdigest()


def fetch_partner_feed(url):
    return requests.get(url, verify=False, timeout=30).json()


def fetch_internal(url, ca_bundle):
    return requests.get(url, verify=ca_bundle, timeout=30).json()


def legacy_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def strict_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = True
    return ctx
