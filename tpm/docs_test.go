package tpm_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/tpm"
)

// TestDocs keeps docs/attestation.md and the code in step: the reason
// table, the record types, and the policy example.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/attestation.md")
	require.NoError(t, err)
	doc := string(b)

	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^\| (8\d\d) \| ([a-z-]+) \|`).FindAllStringSubmatch(doc, -1) {
		documented = append(documented, m[1]+" "+m[2])
	}
	var coded []string
	for _, r := range tpm.Reasons() {
		coded = append(coded, strconv.Itoa(int(r))+" "+r.String())
	}
	assert.Equal(t, coded, documented, "reason table in docs/attestation.md")

	for _, typ := range []string{tpm.RecordEnrolmentRejected, tpm.RecordDeviceEnrolled, tpm.RecordDeviceApproved,
		tpm.RecordDeviceRevoked, tpm.RecordPolicySet, tpm.RecordAttestationPassed, tpm.RecordAttestationFailed,
		tpm.RecordAttestationEnded} {
		assert.Contains(t, doc, "| `"+typ+"` |", "record type %s documented", typ)
	}

	i := strings.Index(doc, "```json\n")
	require.GreaterOrEqual(t, i, 0)
	j := strings.Index(doc[i+8:], "```")
	p, err := tpm.ParsePolicy([]byte(doc[i+8 : i+8+j]))
	require.NoError(t, err, "the policy example parses")
	assert.Equal(t, []int{0, 7}, p.Selection())
}
