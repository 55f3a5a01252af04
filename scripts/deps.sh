#!/usr/bin/env bash
# Installs the Debian packages tradecore's tests and local defaults need, once.
# Idempotent: does nothing when every package is already installed; runs
# `apt-get update` at most once per call. Needs root (or sudo) when something is missing.
set -euo pipefail

packages=(
  softhsm2   # PKCS#11 token for the HSM service (hsm/, softhsm/)
  opensc     # pkcs11-tool: interoperability tests of the HSM keys
  openssl    # verifies exported ECDSA signatures in tests
  swtpm        # TPM 2.0 simulator the attestation tests start (tpm/)
  swtpm-tools  # swtpm_setup: manufactures simulated TPMs with EK certificates from a local CA (tpm/)
  postgresql # server programs (initdb, postgres) for the throwaway clusters of internal/pgtest (audit/pgstore tests)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root to install: ${missing[*]} (run as root or install sudo)" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
