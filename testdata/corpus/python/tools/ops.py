#!/usr/bin/env python3
"""Operational helpers run by the on-call engineer."""
import os
import shlex
import subprocess
import sys


def restart(service):
    os.system("systemctl restart " + service)


def tail_logs(service, lines=100):
    return subprocess.run(["journalctl", "-u", service, "-n", str(lines)], capture_output=True, text=True)


def disk_usage(path):
    out = subprocess.check_output(f"du -sh {path}", shell=True)
    return out.decode()


def safe_disk_usage(path):
    return subprocess.check_output("du -sh " + shlex.quote(path), shell=False)


def clear_screen():
    os.system("clear")


def run_user_script(script_path, args):
    cmd = "bash %s %s" % (script_path, " ".join(args))
    subprocess.Popen(cmd, shell=True).wait()


def uptime():
    return subprocess.run("uptime", shell=True, capture_output=True).stdout


def grep_config(pattern):
    return os.popen("grep -r '%s' /etc/app" % pattern).read()


if __name__ == "__main__":
    restart(sys.argv[1])
