package proto

import (
	"errors"

	"github.com/tradecore/tradecore/core"
)

// The gateway's reason codes (docs/protocol.md, "Gateway reason codes"): they
// appear in LoginRejected, Logout and SessionReject, never in engine events,
// and are stable.
const (
	ReasonUnsupportedVersion core.Reason = 600
	ReasonUnknownKey         core.Reason = 601
	ReasonExpiredKey         core.Reason = 602
	ReasonRevokedKey         core.Reason = 603
	ReasonNoScope            core.Reason = 604
	ReasonClockSkew          core.Reason = 605
	ReasonNonceReplay        core.Reason = 606
	ReasonBadMAC             core.Reason = 607
	ReasonSourceNotAllowed   core.Reason = 608
	ReasonSessionActive      core.Reason = 609
	ReasonReplayUnavailable  core.Reason = 610
	ReasonTooManyConnections core.Reason = 611
	ReasonLoginTimeout       core.Reason = 612
	ReasonLoginRate          core.Reason = 613

	ReasonAttestRequired    core.Reason = 640
	ReasonDeviceNotAllowed  core.Reason = 641
	ReasonAttestTimeout     core.Reason = 642
	ReasonAttestUnavailable core.Reason = 643

	ReasonSessionRate  core.Reason = 620
	ReasonAccountRate  core.Reason = 621
	ReasonAddressRate  core.Reason = 622
	ReasonEngineBusy   core.Reason = 623
	ReasonMalformed    core.Reason = 630
	ReasonOversized    core.Reason = 631
	ReasonHBTimeout    core.Reason = 632
	ReasonSlowReader   core.Reason = 633
	ReasonShutdown     core.Reason = 634
	ReasonLogoutByUser core.Reason = 635
)

var gatewayReasons = map[core.Reason]string{
	ReasonUnsupportedVersion: "unsupported-version",
	ReasonUnknownKey:         "unknown-key",
	ReasonExpiredKey:         "expired-key",
	ReasonRevokedKey:         "revoked-key",
	ReasonNoScope:            "no-scope",
	ReasonClockSkew:          "clock-skew",
	ReasonNonceReplay:        "nonce-replay",
	ReasonBadMAC:             "bad-mac",
	ReasonSourceNotAllowed:   "source-not-allowed",
	ReasonSessionActive:      "session-active",
	ReasonReplayUnavailable:  "replay-unavailable",
	ReasonTooManyConnections: "too-many-connections",
	ReasonLoginTimeout:       "login-timeout",
	ReasonLoginRate:          "login-rate",
	ReasonAttestRequired:     "attestation-required",
	ReasonDeviceNotAllowed:   "device-not-allowed",
	ReasonAttestTimeout:      "attestation-timeout",
	ReasonAttestUnavailable:  "attestation-unavailable",
	ReasonSessionRate:        "session-rate",
	ReasonAccountRate:        "account-rate",
	ReasonAddressRate:        "address-rate",
	ReasonEngineBusy:         "engine-busy",
	ReasonMalformed:          "malformed-frame",
	ReasonOversized:          "oversized-frame",
	ReasonHBTimeout:          "heartbeat-timeout",
	ReasonSlowReader:         "slow-reader",
	ReasonShutdown:           "server-shutdown",
	ReasonLogoutByUser:       "logout-requested",
}

// The attestation reason codes (8xx) of docs/attestation.md, which
// LoginRejected and Logout carry unchanged when a device's attestation
// fails. Package tpm defines them (tpm.Reason); their names are repeated
// here so that the protocol does not depend on the TPM code, and a test
// keeps both tables in step with the document.
var attestReasons = map[core.Reason]string{
	800: "malformed", 801: "device-unknown", 802: "device-not-approved", 803: "device-revoked",
	804: "nonce-unknown", 805: "nonce-mismatch", 806: "nonce-used", 807: "nonce-expired", 808: "challenge-limit",
	810: "signature-invalid", 811: "not-tpm-generated", 812: "not-quote", 813: "signer-mismatch",
	814: "pcr-selection-mismatch", 815: "pcr-mismatch", 816: "counter-rollback",
	820: "ek-cert-invalid", 821: "ek-untrusted", 822: "ek-mismatch", 823: "ak-invalid", 824: "activation-failed",
	825: "no-activation", 830: "attestation-expired", 831: "policy-changed", 832: "policy-missing", 840: "audit-failed",
}

// ReasonName returns the stable name of any reason code: the engine's
// (core.Reason.String), the gateway's or the attestation's (8xx).
func ReasonName(r core.Reason) string {
	if n, ok := gatewayReasons[r]; ok {
		return n
	}
	if n, ok := attestReasons[r]; ok {
		return n
	}
	return r.String()
}

// AttestReasons lists the attestation codes (8xx) in ascending order.
func AttestReasons() []core.Reason { return sortedReasons(attestReasons) }

// GatewayReasons lists the gateway's codes in ascending order.
func GatewayReasons() []core.Reason { return sortedReasons(gatewayReasons) }

func sortedReasons(m map[core.Reason]string) []core.Reason {
	out := make([]core.Reason, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// ReasonOf returns the Logout reason for a decoder error: oversized-frame,
// unsupported-version or malformed-frame.
func ReasonOf(err error) core.Reason {
	switch {
	case errors.Is(err, ErrOversized):
		return ReasonOversized
	case errors.Is(err, ErrVersion):
		return ReasonUnsupportedVersion
	}
	return ReasonMalformed
}
