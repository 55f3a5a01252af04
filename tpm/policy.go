package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
)

// maxPCR is the highest PCR index (PC Client TPMs have 24 PCRs).
const maxPCR = 23

// MaxPolicySize bounds a policy file.
const MaxPolicySize = 16 << 10

// DevicePolicyPrefix prefixes the name of a policy pinned for one device
// at approval ("device-" + device id). Class policy names may not use it.
const DevicePolicyPrefix = "device-"

var policyNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Policy is a PCR policy: the SHA-256 bank PCRs a device quotes and the
// golden value each must hold. A policy applies to one device (pinned at
// approval from its enrolment snapshot) or to a device class (written by an
// operator and named on approval). It is pure data; see [ParsePolicy] for
// its file form.
type Policy struct {
	Name string
	PCRs []PCRValue // ascending by index, no duplicates
}

// policyFile is Policy's JSON form (docs/attestation.md).
type policyFile struct {
	Version int               `json:"version"`
	Name    string            `json:"name"`
	Bank    string            `json:"bank"`
	PCRs    map[string]string `json:"pcrs"`
}

// ParsePolicy parses and checks a policy file: version 1, a name, bank
// "sha256", and 1 to 24 PCRs each mapped to 64 hex digits.
func ParsePolicy(b []byte) (Policy, error) {
	if len(b) > MaxPolicySize {
		return Policy{}, fmt.Errorf("%w: file is %d bytes, at most %d", ErrPolicyInvalid, len(b), MaxPolicySize)
	}
	var f policyFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Policy{}, fmt.Errorf("%w: %v (fields: version, name, bank, pcrs)", ErrPolicyInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Policy{}, fmt.Errorf("%w: trailing data after the policy object", ErrPolicyInvalid)
	}
	if f.Version != 1 {
		return Policy{}, fmt.Errorf("%w: version %d: set \"version\": 1", ErrPolicyInvalid, f.Version)
	}
	if f.Bank != Bank {
		return Policy{}, fmt.Errorf("%w: bank %q: set \"bank\": %q (the only bank supported)", ErrPolicyInvalid, f.Bank, Bank)
	}
	p := Policy{Name: f.Name}
	for k, v := range f.PCRs {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i > maxPCR || strconv.Itoa(i) != k {
			return Policy{}, fmt.Errorf("%w: pcrs key %q: use a PCR index 0..%d", ErrPolicyInvalid, truncate(k, 8), maxPCR)
		}
		val, err := hex.DecodeString(v)
		if err != nil || len(val) != sha256.Size {
			return Policy{}, fmt.Errorf("%w: pcrs[%d]: want 64 hex digits (a SHA-256 PCR value)", ErrPolicyInvalid, i)
		}
		p.PCRs = append(p.PCRs, PCRValue{Index: i, Value: val})
	}
	sort.Slice(p.PCRs, func(a, b int) bool { return p.PCRs[a].Index < p.PCRs[b].Index })
	return p, p.check()
}

// Encode returns the policy's file form.
func (p Policy) Encode() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	f := policyFile{Version: 1, Name: p.Name, Bank: Bank, PCRs: map[string]string{}}
	for _, v := range p.PCRs {
		f.PCRs[strconv.Itoa(v.Index)] = hex.EncodeToString(v.Value)
	}
	return Marshal(f)
}

func (p Policy) check() error {
	if !policyNameRE.MatchString(p.Name) {
		return fmt.Errorf("%w: name %q: use 1-64 of a-z 0-9 . _ - starting with a letter or digit", ErrPolicyInvalid, truncate(p.Name, 70))
	}
	if len(p.PCRs) == 0 {
		return fmt.Errorf("%w: pcrs is empty: list at least one PCR and its golden value", ErrPolicyInvalid)
	}
	for i, v := range p.PCRs {
		if v.Index < 0 || v.Index > maxPCR || len(v.Value) != sha256.Size {
			return fmt.Errorf("%w: pcrs[%d]: index 0..%d with a 32-byte value", ErrPolicyInvalid, v.Index, maxPCR)
		}
		if i > 0 && p.PCRs[i-1].Index >= v.Index {
			return fmt.Errorf("%w: pcrs: index %d listed twice or out of order", ErrPolicyInvalid, v.Index)
		}
	}
	return nil
}

// Selection is the policy's PCR indices, ascending.
func (p Policy) Selection() []int {
	out := make([]int, len(p.PCRs))
	for i, v := range p.PCRs {
		out[i] = v.Index
	}
	return out
}

// Digest is the PCR digest a quote over the policy's selection must carry:
// SHA-256 over the golden values concatenated in ascending PCR order
// (TPM 2.0 Part 3, TPM2_Quote: pcrDigest).
func (p Policy) Digest() []byte {
	return PCRDigest(p.PCRs)
}

// PCRDigest hashes values (ascending by index) the way TPM2_Quote does.
func PCRDigest(values []PCRValue) []byte {
	h := sha256.New()
	for _, v := range values {
		h.Write(v.Value)
	}
	return h.Sum(nil)
}

// checkSelection checks a bank and PCR list from a message and returns the
// selection bitmap.
func checkSelection(bank string, pcrs []int) ([]byte, error) {
	if bank != Bank {
		return nil, reject(ReasonMalformed, "bank %q: only %q is supported", truncate(bank, 16), Bank)
	}
	if len(pcrs) == 0 || len(pcrs) > maxPCR+1 {
		return nil, reject(ReasonMalformed, "pcrs: %d indices, want 1..%d", len(pcrs), maxPCR+1)
	}
	if !slices.IsSorted(pcrs) {
		return nil, reject(ReasonMalformed, "pcrs: indices must be ascending")
	}
	bm := make([]byte, 3)
	for i, p := range pcrs {
		if p < 0 || p > maxPCR || (i > 0 && pcrs[i-1] == p) {
			return nil, reject(ReasonMalformed, "pcrs: index %d: want distinct indices 0..%d", p, maxPCR)
		}
		bm[p/8] |= 1 << (p % 8)
	}
	return bm, nil
}

// selectionBitmap is the 3-byte TPMS_PCR_SELECTION bitmap of pcrs.
func selectionBitmap(pcrs []int) []byte {
	bm := make([]byte, 3)
	for _, p := range pcrs {
		bm[p/8] |= 1 << (p % 8)
	}
	return bm
}

var deviceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func validDeviceID(id string) bool { return deviceIDRE.MatchString(id) }
