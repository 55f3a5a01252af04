package netseg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// Status is what is in force under the pin folder.
type Status struct {
	PinPath string `json:"pin_path"`
	// Applied is true when a policy is recorded under the pin folder.
	Applied bool `json:"applied"`
	// Enforced is true when a policy is applied and every check passed:
	// the recorded table is the one in force and every segment's five
	// programs are attached to its cgroup as it is now.
	Enforced  bool            `json:"enforced"`
	Digest    string          `json:"digest,omitempty"`
	AppliedAt time.Time       `json:"applied_at,omitzero"`
	Segments  []SegmentStatus `json:"segments"`
	// Problems say what is wrong when Applied but not Enforced, each with
	// the fix.
	Problems []string `json:"problems"`
	// Policy is the applied policy (nil when none).
	Policy *Policy `json:"-"`
}

// SegmentStatus is one segment's part of Status.
type SegmentStatus struct {
	SegmentSummary
	// Hooks lists the hooks attached to the segment's cgroup.
	Hooks    []string `json:"hooks"`
	Enforced bool     `json:"enforced"`
}

// Status reads the pinned state and checks it against the kernel. A pin
// folder with nothing applied gives Applied false and no error.
func (e *Enforcer) Status(ctx context.Context) (Status, error) {
	st := Status{PinPath: e.cfg.PinPath, Segments: []SegmentStatus{}, Problems: []string{}}
	if _, err := os.Stat(e.cfg.PinPath); errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	unlock, err := lockDir(ctx, e.cfg.PinPath, false)
	if err != nil {
		return st, err
	}
	defer unlock()
	existing, err := e.loadPinnedSegments()
	if err != nil {
		return st, err
	}
	defer func() {
		for _, s := range existing {
			s.close()
		}
	}()
	sh, err := e.openShared(false)
	if errors.Is(err, os.ErrNotExist) {
		if len(existing) > 0 {
			st.Applied = true
			st.Problems = append(st.Problems, "segment programs are pinned but the shared maps are missing; run detach, then apply")
		}
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer sh.close()
	rec, ok, err := readState(sh.state)
	if err != nil {
		st.Applied = true
		st.Problems = append(st.Problems, err.Error())
		return st, nil
	}
	if !ok {
		if len(existing) > 0 {
			st.Applied = true
			st.Problems = append(st.Problems, "segment programs are attached but no policy is recorded (an interrupted first apply); run apply or detach")
		}
		return st, nil
	}
	st.Applied = true
	st.Digest, st.AppliedAt, st.Policy = rec.digest, rec.appliedAt, rec.policy
	var cur ebpf.MapID
	if err := sh.policy.Lookup(uint32(0), &cur); err != nil || cur != rec.innerID {
		st.Problems = append(st.Problems, "the policy table in force is not the recorded one (an interrupted apply); run apply again")
	}
	for _, s := range rec.policy.Segments {
		ss := SegmentStatus{SegmentSummary: SegmentSummary{Name: s.Name, Cgroup: s.Cgroup, Default: s.Default.String(), Allow: len(s.Allow), Deny: len(s.Deny)}, Hooks: []string{}}
		pl := existing[s.Name]
		if pl != nil {
			ss.CgroupID = pl.cgroupID
			for h, l := range pl.links {
				if l == nil {
					continue
				}
				if info, err := l.Info(); err == nil && info.Cgroup() != nil && info.Cgroup().CgroupId == pl.cgroupID {
					ss.Hooks = append(ss.Hooks, hook(h).String())
				}
			}
		}
		now, err := cgroupID(filepath.Join(e.cfg.CgroupMount, s.Cgroup))
		switch {
		case pl == nil || len(ss.Hooks) == 0:
			st.Problems = append(st.Problems, fmt.Sprintf("segment %q: no programs attached; run apply again", s.Name))
		case err != nil:
			st.Problems = append(st.Problems, fmt.Sprintf("segment %q: cgroup %s is gone (%v); recreate it and run apply again", s.Name, s.Cgroup, err))
		case now != pl.cgroupID:
			st.Problems = append(st.Problems, fmt.Sprintf("segment %q: cgroup %s was recreated, and the new one is not confined; run apply again", s.Name, s.Cgroup))
		case len(ss.Hooks) < int(numHooks):
			st.Problems = append(st.Problems, fmt.Sprintf("segment %q: only %s attached; run apply again", s.Name, strings.Join(ss.Hooks, ", ")))
		default:
			ss.Enforced = true
		}
		st.Segments = append(st.Segments, ss)
	}
	for name := range existing {
		if _, ok := rec.policy.Segment(name); !ok {
			st.Problems = append(st.Problems, fmt.Sprintf("segment %q is attached but not in the recorded policy; run apply again", name))
		}
	}
	slices.Sort(st.Problems)
	st.Enforced = len(st.Problems) == 0
	return st, nil
}

// Stats are the counters of the applied policy's segments.
type Stats struct {
	Segments []SegmentStats `json:"segments"`
}

// SegmentStats counts one segment's decisions. Totals never go down while
// the segment stays in the policy; Destinations keep the most recent
// destinations (a bounded table shared by all segments, oldest evicted).
type SegmentStats struct {
	Name     string      `json:"name"`
	CgroupID uint64      `json:"cgroup_id"`
	Allowed  uint64      `json:"allowed"`
	Denied   uint64      `json:"denied"`
	Hooks    []HookStats `json:"hooks"`
	// Destinations are sorted by verdict (denied first), then count,
	// highest first.
	Destinations []DestStats `json:"destinations"`
}

// HookStats counts one hook's decisions.
type HookStats struct {
	Hook    string `json:"hook"`
	Allowed uint64 `json:"allowed"`
	Denied  uint64 `json:"denied"`
}

// DestStats counts the decisions for one destination.
type DestStats struct {
	Verdict  string     `json:"verdict"`
	Hook     string     `json:"hook"`
	Protocol string     `json:"protocol"`
	Addr     netip.Addr `json:"addr"`
	Port     uint16     `json:"port"`
	Count    uint64     `json:"count"`
}

// Stats reads the counters. With nothing applied it returns no segments.
func (e *Enforcer) Stats(ctx context.Context) (Stats, error) {
	out := Stats{Segments: []SegmentStats{}}
	if _, err := os.Stat(e.cfg.PinPath); errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	unlock, err := lockDir(ctx, e.cfg.PinPath, false)
	if err != nil {
		return out, err
	}
	defer unlock()
	existing, err := e.loadPinnedSegments()
	if err != nil {
		return out, err
	}
	for _, s := range existing {
		s.close()
	}
	sh, err := e.openShared(false)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	defer sh.close()
	byID := map[uint64]*SegmentStats{}
	names := make([]string, 0, len(existing))
	for n := range existing {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := &SegmentStats{Name: n, CgroupID: existing[n].cgroupID, Hooks: []HookStats{}, Destinations: []DestStats{}}
		for h := range numHooks {
			hs := HookStats{Hook: h.String()}
			for _, v := range []Action{Deny, Allow} {
				k := counterKey(s.CgroupID, h, v)
				var c uint64
				if err := sh.totals.Lookup(k[:], &c); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					return out, fmt.Errorf("netseg: reading counters: %w", err)
				}
				if v == Allow {
					hs.Allowed = c
				} else {
					hs.Denied = c
				}
			}
			s.Allowed += hs.Allowed
			s.Denied += hs.Denied
			s.Hooks = append(s.Hooks, hs)
		}
		byID[s.CgroupID] = s
	}
	var (
		k   [destKeyLen]byte
		c   uint64
		it  = sh.dests.Iterate()
		cnt int
	)
	for it.Next(&k, &c) {
		cnt++
		if cnt > destsMax*2 {
			break
		}
		s := byID[binary.NativeEndian.Uint64(k[0:])]
		if s == nil {
			continue
		}
		d := DestStats{Verdict: Action(k[9] & 1).String(), Protocol: protoName(k[10]), Port: binary.NativeEndian.Uint16(k[12:]), Count: c}
		if k[11] < byte(numHooks) {
			d.Hook = hook(k[11]).String()
		}
		if k[8] == family4 {
			d.Addr = netip.AddrFrom4([4]byte(k[16:20]))
		} else {
			d.Addr = netip.AddrFrom16([16]byte(k[16:32]))
		}
		s.Destinations = append(s.Destinations, d)
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("netseg: reading destination counters: %w", err)
	}
	for _, n := range names {
		s := byID[existing[n].cgroupID]
		slices.SortFunc(s.Destinations, func(a, b DestStats) int {
			if a.Verdict != b.Verdict {
				return strings.Compare(b.Verdict, a.Verdict) // deny before allow
			}
			if a.Count != b.Count {
				if a.Count > b.Count {
					return -1
				}
				return 1
			}
			if c := a.Addr.Compare(b.Addr); c != 0 {
				return c
			}
			if a.Port != b.Port {
				return int(a.Port) - int(b.Port)
			}
			if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
				return c
			}
			return strings.Compare(a.Hook, b.Hook)
		})
		out.Segments = append(out.Segments, *s)
	}
	return out, nil
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMP, protoICMPv6:
		return "icmp"
	}
	return fmt.Sprintf("ip-proto-%d", p)
}
