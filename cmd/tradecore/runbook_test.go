package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/testenv"
)

// runbookScript turns the runbook of docs/keys.md (between the runbook
// markers, inside ```sh blocks) into a testscript: "$ cmd" runs cmd in sh,
// "$ ! cmd" must fail, "> text" and "2> text" must appear on the previous
// command's stdout and stderr.
func runbookScript(doc []byte) (string, int, error) {
	begin, end := bytes.Index(doc, []byte("<!-- runbook:begin -->")), bytes.Index(doc, []byte("<!-- runbook:end -->"))
	if begin < 0 || end < begin {
		return "", 0, fmt.Errorf("docs/keys.md has no runbook markers")
	}
	var out strings.Builder
	steps := 0
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(doc[begin:end]))
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock = false
		case !inBlock:
		case strings.HasPrefix(line, "$ ! "):
			fmt.Fprintf(&out, "! exec sh -c %s\n", quote(line[4:]))
			steps++
		case strings.HasPrefix(line, "$ "):
			fmt.Fprintf(&out, "exec sh -c %s\n", quote(line[2:]))
			steps++
		case strings.HasPrefix(line, "2> "):
			fmt.Fprintf(&out, "stderr %s\n", quote(regexp.QuoteMeta(line[3:])))
		case strings.HasPrefix(line, "> "):
			fmt.Fprintf(&out, "stdout %s\n", quote(regexp.QuoteMeta(line[2:])))
		case strings.TrimSpace(line) == "":
		default:
			return "", 0, fmt.Errorf("runbook line %q is neither a command ($) nor an expectation (>, 2>)", line)
		}
	}
	return out.String(), steps, nil
}

// TestRunbook executes the security engineer's runbook in docs/keys.md step
// by step against the real binary, SoftHSM and pkcs11-tool.
func TestRunbook(t *testing.T) {
	needSoftHSM(t)
	for _, tool := range []string{"pkcs11-tool", "tar", "awk"} {
		_, err := execLookPath(tool)
		testenv.Need(t, err == nil, tool+" not installed (scripts/deps.sh installs opensc)")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "keys.md"))
	require.NoError(t, err)
	script, steps, err := runbookScript(doc)
	require.NoError(t, err)
	require.GreaterOrEqual(t, steps, 15, "the runbook has its steps")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "runbook.txtar"), []byte(script), 0o644))
	testscript.Run(t, testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			env.Setenv("DATA", filepath.Join(env.WorkDir, "var"))
			env.Setenv("CREDS", filepath.Join(env.WorkDir, "credentials"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("XDG_STATE_HOME", "")
			env.Setenv("TRADECORE_CREDENTIALS_DIR", "")
			env.Setenv("CREDENTIALS_DIRECTORY", "")
			env.Setenv("SOFTHSM2_CONF", "")
			return nil
		},
	})
}

func TestRunbookParser(t *testing.T) {
	s, n, err := runbookScript([]byte("<!-- runbook:begin -->\n```sh\n$ echo 'a'\n> a\n$ ! false\n2> x.y\n```\n<!-- runbook:end -->"))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, "exec sh -c 'echo ''a'''\nstdout 'a'\n! exec sh -c 'false'\nstderr 'x\\.y'\n", s)
	_, _, err = runbookScript([]byte("<!-- runbook:begin -->\n```sh\nrm -rf /\n```\n<!-- runbook:end -->"))
	require.ErrorContains(t, err, "neither a command")
}

var execLookPath = func(name string) (string, error) { return exec.LookPath(name) }
