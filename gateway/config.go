package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/gateway/apikey"
)

// ErrConfig is wrapped by New for an invalid Config or Deps; the message
// names the field and the fix.
var ErrConfig = errors.New("gateway: invalid configuration")

// Defaults of Config's zero fields.
const (
	DefaultOrderEntry        = "127.0.0.1:7001"
	DefaultMarketData        = "127.0.0.1:7002"
	DefaultHeartbeat         = time.Second
	DefaultHeartbeatTimeout  = 15 * time.Second
	DefaultLoginTimeout      = 5 * time.Second
	DefaultMaxClockSkew      = 5 * time.Second
	DefaultMaxSessions       = 1024
	DefaultMaxConnsPerAddr   = 16
	DefaultLoginsPerAddr     = 20
	DefaultSessionRate       = 250_000
	DefaultAccountRate       = 500_000
	DefaultAddressRate       = 1_000_000
	DefaultOutboundQueue     = 256 << 10
	DefaultMDReplay          = 1 << 16
	DefaultDrainFlushTimeout = time.Second
	DefaultAttestCheck       = 10 * time.Second
)

// Config shapes the gateway. The zero value listens on the default
// loopback ports with TLS required (Config.TLS must then give a certificate)
// and every limit at its default.
type Config struct {
	// OrderEntry and MarketData are the listen addresses ("host:port");
	// "-" turns a port off. Defaults DefaultOrderEntry, DefaultMarketData.
	OrderEntry, MarketData string
	// TLS is the servers' TLS configuration (MinVersion TLS 1.3 unless
	// set). nil means plain TCP, which needs PlainTCP too: plain TCP is
	// never the result of a forgotten setting.
	TLS      *tls.Config
	PlainTCP bool

	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	LoginTimeout      time.Duration
	MaxClockSkew      time.Duration

	MaxSessions     int
	MaxConnsPerAddr int
	// LoginsPerAddr bounds login attempts per source address per second.
	LoginsPerAddr int
	// SessionRate, AccountRate and AddressRate are messages per second
	// (burst: as many) per session, per account and per source address.
	SessionRate, AccountRate, AddressRate int
	// OutboundQueue is each session's outbound queue, bytes (rounded up to
	// a power of two).
	OutboundQueue int
	// MDReplay is the number of market-data messages kept for replay
	// (rounded up to a power of two).
	MDReplay int

	// AccountDevices lists the accounts whose sessions require an attested
	// device: account → a device id (32 lowercase hex digits) or
	// apikey.AnyDevice. It adds to the keys' own requirement
	// (apikey.Key.RequireDevice); a key and its account naming two
	// different devices admit none. Needs Deps.Attestor.
	AccountDevices map[uint32]string
	// AttestCheck is how often an attested session's attestation is
	// revalidated (revocation, policy change, expiry; default 10 s).
	AttestCheck time.Duration

	// Now is the clock of the login checks and of attestation renewals
	// (default time.Now); give the tpm.Attestor the same clock.
	Now func() time.Time
	// ID names this server process in LoginAccepted.SessionID (default: its
	// start time, ns).
	ID uint64
}

// Keys is what the gateway needs of the API key store (apikey.Store).
type Keys interface {
	Lookup(ctx context.Context, id string) (apikey.Key, []byte, error)
}

// Recorder writes audit records (audit.Log.Record).
type Recorder interface {
	Record(ctx context.Context, typ string, body any) (uint64, error)
}

// Deps are the parts of the server the gateway plugs into.
type Deps struct {
	Keys     Keys
	Recorder Recorder
	// In is the engine's inbound ring, Control its control lane (the kill
	// switch goes there).
	In, Control *ring.MPSC[core.Command]
	// Events is the order-entry publisher's consumer of the outbound ring,
	// MDEvents the market-data publisher's (nil with MarketData "-"): both
	// gated after the journaler (ring.NewConsumer(journaler.Events())), so
	// nothing reaches a client before it is durable.
	Events, MDEvents *ring.Consumer[core.Event]
	// Loop reports when the engine has published its last event.
	Loop interface{ Stopped() bool }
	// JournalDir is the audit folder, read for replays; Marks the journaler's
	// sequence marks (Journaler.SetMarks); the gateway adds the marks of the
	// log written before it started.
	JournalDir string
	Marks      *audit.SeqMarks
	// Attestor verifies devices' TPM attestations (tpm.Attestor on the
	// venue's state folder, with the audit log as its Recorder and the
	// same clock as Config.Now). nil: no attestation; a login that needs
	// one is refused (attestation-unavailable), never admitted.
	Attestor Attestor
	// Registry receives the gateway's metrics (nil: none).
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

func (c *Config) fill() error {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	defi := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	if c.OrderEntry == "" {
		c.OrderEntry = DefaultOrderEntry
	}
	if c.MarketData == "" {
		c.MarketData = DefaultMarketData
	}
	def(&c.HeartbeatInterval, DefaultHeartbeat)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.LoginTimeout, DefaultLoginTimeout)
	def(&c.AttestCheck, DefaultAttestCheck)
	def(&c.MaxClockSkew, DefaultMaxClockSkew)
	defi(&c.MaxSessions, DefaultMaxSessions)
	defi(&c.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	defi(&c.LoginsPerAddr, DefaultLoginsPerAddr)
	defi(&c.SessionRate, DefaultSessionRate)
	defi(&c.AccountRate, DefaultAccountRate)
	defi(&c.AddressRate, DefaultAddressRate)
	defi(&c.OutboundQueue, DefaultOutboundQueue)
	defi(&c.MDReplay, DefaultMDReplay)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ID == 0 {
		c.ID = uint64(time.Now().UnixNano())
	}
	switch {
	case c.TLS == nil && !c.PlainTCP:
		return fmt.Errorf("%w: no TLS configuration; give Config.TLS, or set PlainTCP to serve plain TCP on purpose", ErrConfig)
	case c.TLS != nil && c.PlainTCP:
		return fmt.Errorf("%w: both TLS and PlainTCP are set; choose one", ErrConfig)
	case c.HeartbeatTimeout <= c.HeartbeatInterval:
		return fmt.Errorf("%w: HeartbeatTimeout %v must exceed HeartbeatInterval %v", ErrConfig, c.HeartbeatTimeout, c.HeartbeatInterval)
	case c.OutboundQueue < 4096:
		return fmt.Errorf("%w: OutboundQueue %d bytes is below 4096", ErrConfig, c.OutboundQueue)
	case c.AttestCheck < 0:
		return fmt.Errorf("%w: AttestCheck %v is negative", ErrConfig, c.AttestCheck)
	case c.MaxSessions < 0 || c.MaxConnsPerAddr < 0 || c.SessionRate < 0 || c.AccountRate < 0 || c.AddressRate < 0 || c.LoginsPerAddr < 0:
		return fmt.Errorf("%w: limits must not be negative", ErrConfig)
	}
	for acct, req := range c.AccountDevices {
		if err := apikey.CheckDeviceRequirement(req); err != nil || req == "" {
			return fmt.Errorf("%w: AccountDevices[%d] = %q: give a device id (32 lowercase hex digits) or %q", ErrConfig, acct, req, apikey.AnyDevice)
		}
	}
	if c.TLS != nil {
		c.TLS = c.TLS.Clone()
		if c.TLS.MinVersion == 0 {
			c.TLS.MinVersion = tls.VersionTLS13
		}
		if c.TLS.MinVersion < tls.VersionTLS12 {
			return fmt.Errorf("%w: TLS MinVersion below 1.2; use 1.2 or 1.3", ErrConfig)
		}
	}
	return nil
}

func (d *Deps) check(c *Config) error {
	switch {
	case d.Keys == nil:
		return fmt.Errorf("%w: Deps.Keys is nil", ErrConfig)
	case d.Recorder == nil:
		return fmt.Errorf("%w: Deps.Recorder is nil: logins and refusals are audit records", ErrConfig)
	case d.In == nil:
		return fmt.Errorf("%w: Deps.In is nil", ErrConfig)
	case c.OrderEntry != "-" && d.Events == nil:
		return fmt.Errorf("%w: Deps.Events is nil", ErrConfig)
	case c.MarketData != "-" && d.MDEvents == nil:
		return fmt.Errorf("%w: Deps.MDEvents is nil; create it gated after the journaler, or set MarketData to \"-\"", ErrConfig)
	case d.Loop == nil:
		return fmt.Errorf("%w: Deps.Loop is nil", ErrConfig)
	case d.JournalDir == "" || d.Marks == nil:
		return fmt.Errorf("%w: Deps.JournalDir and Deps.Marks are needed for replays", ErrConfig)
	case len(c.AccountDevices) > 0 && d.Attestor == nil:
		return fmt.Errorf("%w: Config.AccountDevices requires attested devices but Deps.Attestor is nil: give the tpm.Attestor", ErrConfig)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
