package core_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// TestReasonsDocumented keeps docs/reasons.md and the code in step: every
// code (matcher and risk layer) has a row with its name, and every row is a
// code.
func TestReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/reasons.md")
	require.NoError(t, err)
	rows := regexp.MustCompile(`(?m)^\| (\d+) \| ([a-z-]+) \|`).FindAllStringSubmatch(string(doc), -1)
	documented := map[core.Reason]string{}
	for _, r := range rows {
		n, err := strconv.Atoi(r[1])
		require.NoError(t, err)
		documented[core.Reason(n)] = r[2]
	}
	want := map[core.Reason]string{}
	for _, r := range append(core.Reasons(), core.RiskReasons()...) {
		want[r] = r.String()
	}
	require.Equal(t, want, documented)
}
