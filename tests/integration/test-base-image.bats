#!/usr/bin/env bats
# The image is the Debian release it claims (DEBIAN_RELEASE, trixie by default),
# with a supported Python, a Squid built with OpenSSL, and package records a
# vulnerability scanner can read.

load helpers

setup_file() { suite_setup_file; }
teardown_file() { suite_teardown_file; }
teardown() { suite_teardown; }

# in_image PYTHON_CODE: run code with the image's own interpreter.
in_image() { run_image --entrypoint /usr/bin/python3 -- -I -S -c "$1"; }

expected_version_id() {
    case "$DEBIAN_RELEASE" in
        trixie) echo 13 ;;
        bookworm) echo 12 ;;
        *) fail "DEBIAN_RELEASE=$DEBIAN_RELEASE: this suite knows trixie (13) and bookworm (12)"; return 1 ;;
    esac
}

@test "/etc/os-release is the Debian release the image was built from" {
    local version_id
    version_id=$(expected_version_id)
    run in_image 'print(open("/etc/os-release").read())'
    [ "$status" -eq 0 ] || fail "$output"
    [[ "$output" == *'ID=debian'* ]] || fail "$output"
    [[ "$output" == *"VERSION_ID=\"$version_id\""* ]] || fail "expected Debian $version_id: $output"
    [[ "$output" == *"VERSION_CODENAME=$DEBIAN_RELEASE"* ]] || fail "$output"
}

@test "the image's release label agrees with /etc/os-release" {
    run engine image inspect --format '{{index .Config.Labels "io.cephaloproxy.debian.release"}}' "$IMAGE_NAME"
    [ "$output" = "$DEBIAN_RELEASE" ]
}

@test "Python is 3.11 or newer (3.13 on trixie, 3.11 on bookworm)" {
    run in_image 'import sys; print("%d.%d" % sys.version_info[:2])'
    [ "$status" -eq 0 ] || fail "$output"
    local major=${output%%.*} minor=${output#*.}
    [ "$major" -eq 3 ] && [ "$minor" -ge 11 ] || fail "Python $output"
    case "$DEBIAN_RELEASE" in
        trixie) [ "$output" = 3.13 ] || fail "trixie ships 3.13, got $output" ;;
        bookworm) [ "$output" = 3.11 ] || fail "bookworm ships 3.11, got $output" ;;
    esac
}

@test "Squid is built with OpenSSL and its certificate generator is present" {
    run run_image --entrypoint /usr/sbin/squid -- -v
    [ "$status" -eq 0 ] || fail "$output"
    [[ "${lines[0]}" == "Squid Cache: Version "* ]] || fail "${lines[0]}"
    [[ "$output" == *"'--with-openssl'"* ]] || fail "no --with-openssl: $output"
    [[ "$output" == *"--enable-ssl-crtd"* ]] || fail "no --enable-ssl-crtd: $output"
    case "$DEBIAN_RELEASE" in
        trixie) [[ "${lines[0]}" == *"Version 6."* ]] || fail "${lines[0]}" ;;
        bookworm) [[ "${lines[0]}" == *"Version 5."* ]] || fail "${lines[0]}" ;;
    esac
    run in_image 'import os; print(os.access("/usr/lib/squid/security_file_certgen", os.X_OK))'
    [ "$output" = True ]
}

@test "Debian package records are present in /var/lib/dpkg/status.d/" {
    # One record per package, distroless style: Package and Version fields.
    run in_image '
import os
root = "/var/lib/dpkg/status.d"
for name in sorted(os.listdir(root)):
    if name.endswith(".md5sums"):
        continue
    fields = dict(line.split(": ", 1) for line in open(os.path.join(root, name)).read().splitlines()
                  if ": " in line and not line.startswith(" "))
    print(name, fields.get("Package", "-"), fields.get("Version", "-"), fields.get("Status", "-"))
'
    [ "$status" -eq 0 ] || fail "$output"
    local line package
    for line in "${lines[@]}"; do
        read -r file package version _ <<<"$line"
        [ "$package" != - ] && [ "$version" != - ] || fail "record $file lacks Package or Version: $line"
    done
    for package in squid-openssl squid-common libc6 libssl3 python3; do
        printf '%s\n' "${lines[@]}" | awk '{print $2}' | grep -Eq "^$package" \
            || fail "no package record for $package:" "${lines[@]}"
    done
}
