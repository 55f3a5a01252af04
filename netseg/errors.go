package netseg

import (
	"errors"
	"fmt"
)

// ErrPolicy is wrapped by every error that reports an invalid policy file (a
// *PolicyError). Nothing was applied: fix the field the message names and
// apply again.
var ErrPolicy = errors.New("netseg: invalid policy")

// ErrNoRoot means the process lacks the privileges segmentation needs (root,
// or CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN). Run the command as root.
var ErrNoRoot = errors.New("netseg: needs root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)")

// ErrNoBPF means the kernel lacks a BPF feature segmentation needs (cgroup
// socket-address and cgroup skb programs, LPM tries, map-in-map, BPF links on
// cgroups: Linux 5.7 or later built with CONFIG_BPF_SYSCALL and
// CONFIG_CGROUP_BPF), or has no cgroup v2 hierarchy mounted. The message
// names what is missing; segmentation cannot run on this kernel.
var ErrNoBPF = errors.New("netseg: kernel BPF support missing")

// ErrCgroup means a segment's cgroup does not exist or is not a cgroup v2
// folder. Create the cgroup (and move the service into it) before applying,
// or fix the segment's cgroup field.
var ErrCgroup = errors.New("netseg: segment cgroup unusable")

// ErrAudit means the audit record of a policy change could not be written, so
// the change was refused (for Apply and Detach the previous state stays in
// force). Fix the audit log and try again.
var ErrAudit = errors.New("netseg: audit record not written")

// ErrBusy means another process is applying or detaching a policy on the
// same pin folder at this moment. Try again when it has finished.
var ErrBusy = errors.New("netseg: another apply or detach is in progress")

// ErrPinned means the pin folder holds objects this version of netseg cannot
// read (another program's, or a partial write). Inspect it with bpftool,
// then run detach, which removes everything under the pin folder.
var ErrPinned = errors.New("netseg: unreadable state under the pin folder")

// PolicyError reports one problem in a policy file. It wraps ErrPolicy.
type PolicyError struct {
	// File is the path given to Load; empty for Parse.
	File string
	// Line and Column locate the offending value (1-based); 0 when the
	// problem is the whole file.
	Line, Column int
	// Field is the path of the offending value, such as
	// "segments[1].allow[0].ports"; empty for the whole file.
	Field string
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (e *PolicyError) Error() string {
	s := "netseg: policy"
	if e.File != "" {
		s += " " + e.File
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" line %d", e.Line)
	}
	if e.Field != "" {
		s += " " + e.Field
	}
	return s + ": " + e.Msg
}

// Unwrap returns ErrPolicy.
func (e *PolicyError) Unwrap() error { return ErrPolicy }
