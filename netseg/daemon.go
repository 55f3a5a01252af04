package netseg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// DaemonConfig is what the daemon's configuration says about segmentation.
// The zero value (with a Recorder) requires segmentation: the daemon refuses
// to start unless a policy is in force.
type DaemonConfig struct {
	Config
	// Policy is a policy file the daemon applies at start (idempotent:
	// unchanged, it writes no record). Empty keeps what is pinned, as
	// applied with `tradecore netseg apply`.
	Policy string
	// Optional lets the daemon start when segmentation cannot be enforced
	// (no root, no kernel support, no policy in force); it then logs why
	// and reports tradecore_netseg_enforced 0. Setting it is logged at
	// start. An invalid or unappliable Policy file refuses the start
	// either way.
	Optional bool
}

// Running is the daemon's segmentation after StartDaemon.
type Running struct {
	// Enforcer is nil when segmentation cannot run in this process.
	Enforcer *Enforcer
	// Status is the state found (after applying Policy).
	Status Status
	// Off says why segmentation is not enforced; nil when it is.
	Off error
	// Collector exports the state and counters; register it on the
	// metrics endpoint in every case.
	Collector *Collector
}

// StartDaemon is what the daemon calls once at start. It enforces the rule:
// segmentation on when it can be; otherwise an error naming the cause
// (ErrNoRoot, ErrNoBPF, no policy in force) that refuses the start, unless
// cfg.Optional, in which case segmentation is reported off and the daemon
// runs.
func StartDaemon(ctx context.Context, cfg DaemonConfig) (*Running, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Optional {
		log.Warn("netseg: segmentation is optional by configuration (netseg.required false): the daemon starts even if it cannot enforce it")
	}
	off := func(e *Enforcer, st Status, why error) (*Running, error) {
		if !cfg.Optional {
			return nil, fmt.Errorf("netseg: segmentation is required but not enforced: %w; fix that, or set netseg.required to false to start without it", why)
		}
		log.Warn("netseg: segmentation off", "reason", why.Error())
		return &Running{Enforcer: e, Status: st, Off: why, Collector: NewCollector(e)}, nil
	}
	e, err := New(cfg.Config)
	if err != nil {
		return off(nil, Status{}, err)
	}
	if cfg.Policy != "" {
		p, err := Load(cfg.Policy)
		if err != nil {
			return nil, fmt.Errorf("netseg: the configured policy (netseg.policy) is invalid: %w", err)
		}
		res, err := e.Apply(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("netseg: applying the configured policy %s: %w", cfg.Policy, err)
		}
		if res.Changed {
			log.Info("netseg: applied the configured policy", "file", cfg.Policy, "digest", res.Digest, "previous", res.Previous, "record", res.Record)
		}
	}
	st, err := e.Status(ctx)
	if err != nil {
		return off(e, st, err)
	}
	switch {
	case !st.Applied:
		return off(e, st, errors.New("no policy is in force: apply one with `tradecore netseg apply -f POLICY` or set netseg.policy"))
	case !st.Enforced:
		return off(e, st, fmt.Errorf("the policy in force is damaged: %s", strings.Join(st.Problems, "; ")))
	}
	names := make([]string, 0, len(st.Segments))
	for _, s := range st.Segments {
		names = append(names, s.Name)
	}
	log.Info("netseg: segmentation on", "digest", st.Digest, "segments", strings.Join(names, ","), "pin_path", st.PinPath)
	return &Running{Enforcer: e, Status: st, Collector: NewCollector(e)}, nil
}
