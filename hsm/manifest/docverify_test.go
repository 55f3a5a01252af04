package manifest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/internal/docverify"
)

var docVerify = docverify.Verify

// TestDocVerifier checks the documented verifier accepts what tradecore
// writes (HTML-significant characters and control characters included) and
// refuses the tampered variants.
func TestDocVerifier(t *testing.T) {
	b := chain(t)
	require.NoError(t, docVerify(b.bytes(), b.pin()))
	b.m.Entries[2].Revoked.Reason = "routine"
	require.Error(t, docVerify(b.bytes(), b.pin()))
	b2 := chain(t)
	require.Error(t, docVerify(b2.bytes(), b.pin()), "wrong pin")
	one := newBuilder(t, "ecdsa-p256")
	require.NoError(t, docVerify(one.bytes(), one.pin()))
}
