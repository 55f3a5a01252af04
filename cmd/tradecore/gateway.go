package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/atomicfile"
)

// gatewayOverrides are serve's flags over the configuration's gateway
// section (tests and tools pick free ports with 127.0.0.1:0).
type gatewayOverrides struct {
	orderEntry, marketData, metrics string
}

// edge is serve's network edge: the API key store, the TLS setup, the
// gateway and the metrics endpoint.
type edge struct {
	store    *apikey.Store
	gw       *gateway.Gateway
	cfg      gateway.Config
	reg      *prometheus.Registry
	pin      string // the server key's pin, hex (TLS only)
	metrics  *http.Server
	metricLn net.Listener
	closeV   func() error
	log      *slog.Logger
	recorded string // file holding the last key change recorded in the audit log
}

// openEdge opens the key store on the data vault, prepares TLS (a
// self-signed certificate under <data-dir>/gateway/tls unless the
// configuration names one) and the metrics registry, and builds the
// gateway config. The gateway itself is made by newGateway, once the rings
// exist.
func openEdge(ctx context.Context, dataDir string, file *config.File, tok *hsm.Token, ov gatewayOverrides, log *slog.Logger) (*edge, error) {
	v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: filepath.Join(dataDir, "keys")})
	if err != nil {
		return nil, fmt.Errorf("open the data vault: %w", err)
	}
	e := &edge{closeV: closeV, log: log, recorded: filepath.Join(gatewayDir(dataDir), "apikeys-recorded")}
	if e.store, err = apikey.Open(ctx, apikey.Config{Dir: gatewayDir(dataDir), Sealer: apikey.VaultSealer(v)}); err != nil {
		closeV()
		return nil, err
	}
	g := file.Gateway
	for _, o := range []struct{ flag, dst *string }{{&ov.orderEntry, &g.OrderEntry}, {&ov.marketData, &g.MarketData}, {&ov.metrics, &g.Metrics}} {
		if *o.flag != "" {
			*o.dst = *o.flag
		}
	}
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	e.cfg = gateway.Config{OrderEntry: g.OrderEntry, MarketData: g.MarketData,
		HeartbeatInterval: ms(g.HeartbeatMs), HeartbeatTimeout: ms(g.HeartbeatTimeoutMs), MaxClockSkew: ms(g.MaxClockSkewMs),
		MaxSessions: int(g.MaxSessions), MaxConnsPerAddr: int(g.MaxConnsPerAddr), LoginsPerAddr: int(g.LoginsPerAddr),
		SessionRate: int(g.SessionRate), AccountRate: int(g.AccountRate), AddressRate: int(g.AddressRate),
		OutboundQueue: int(g.OutboundQueue), MDReplay: int(g.MDReplay)}
	if g.TLSMode == "off" {
		e.cfg.PlainTCP = true
		log.Warn("gateway: TLS is OFF (gateway.tls.mode \"off\"): order entry and market data travel in plain TCP")
	} else {
		certFile, keyFile := g.CertFile, g.KeyFile
		if certFile == "" {
			if certFile, keyFile, err = gateway.EnsureSelfSigned(filepath.Join(gatewayDir(dataDir), "tls"), []string{"127.0.0.1", "::1", "localhost"}); err != nil {
				e.close()
				return nil, fmt.Errorf("gateway: self-signed certificate: %w", err)
			}
		}
		if e.cfg.TLS, err = gateway.LoadTLS(gateway.TLSFiles{CertFile: certFile, KeyFile: keyFile, ClientCA: g.ClientCA, MinVersion: g.MinVersion}); err != nil {
			e.close()
			return nil, err
		}
		if e.pin, err = gateway.PinOf(e.cfg.TLS.Certificates[0].Certificate[0]); err != nil {
			e.close()
			return nil, err
		}
		if g.MinVersion == "1.2" {
			log.Warn("gateway: TLS 1.2 accepted (gateway.tls.min_version \"1.2\")")
		}
	}
	e.reg = prometheus.NewRegistry()
	e.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if g.Metrics != "-" {
		if e.metricLn, err = net.Listen("tcp", g.Metrics); err != nil {
			e.close()
			return nil, fmt.Errorf("gateway: metrics on %s: %w (choose another gateway.metrics)", g.Metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
		e.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = e.metrics.Serve(e.metricLn) }()
	}
	return e, nil
}

func (e *edge) close() error {
	var errs []error
	if e.metrics != nil {
		errs = append(errs, e.metrics.Close())
	}
	if e.closeV != nil {
		errs = append(errs, e.closeV())
	}
	return errors.Join(errs...)
}

// addrs returns where the ports listen.
func (e *edge) addrs() (oe, md string) {
	if a := e.gw.Addr(true); a != nil {
		oe = a.String()
	}
	if a := e.gw.Addr(false); a != nil {
		md = a.String()
	}
	return oe, md
}

// clientConfig is the client configuration of a key on the order-entry port.
func (e *edge) clientConfig(id string, secret []byte) client.Config {
	oe, _ := e.addrs()
	return client.Config{Addr: oe, KeyID: id, Secret: secret, Plain: e.cfg.PlainTCP, PinSHA256: e.pin}
}

// keyFor returns an active key (and its secret) of user with scopes for
// account, creating one when there is none.
func (e *edge) keyFor(ctx context.Context, user string, account uint32, scopes ...apikey.Scope) (apikey.Key, []byte, error) {
	keys, err := e.store.List(ctx)
	if err != nil {
		return apikey.Key{}, nil, err
	}
	now := time.Now()
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		if k.User == user && k.Account == account && k.RotatedTo == "" && k.State(now.Add(time.Hour)) == nil && k.Has(scopes[0]) {
			k, secret, err := e.store.Lookup(ctx, k.ID)
			return k, secret, err
		}
		if k.User == user && k.RotatedTo == "" && k.State(now) == nil {
			if _, err := e.store.Revoke(ctx, k.ID, "replaced by serve"); err != nil {
				return apikey.Key{}, nil, err
			}
		}
	}
	return e.store.Create(ctx, apikey.CreateRequest{User: user, Account: account, Scopes: scopes})
}

// writeDemoKey writes the demo key file (mode 0600) for tcclient: a
// trading and market-data key of user "demo", the ports' addresses and the
// server's pin. It holds a secret in plain text: a local demo only.
func (e *edge) writeDemoKey(ctx context.Context, path string, account uint32) error {
	k, secret, err := e.keyFor(ctx, "demo", account, apikey.ScopeTrade, apikey.ScopeData)
	if err != nil {
		return err
	}
	oe, md := e.addrs()
	kf := client.KeyFile{KeyID: k.ID, Secret: hex.EncodeToString(secret), Account: k.Account, OrderEntry: oe, MarketData: md,
		PinSHA256: e.pin, Plain: e.cfg.PlainTCP}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600)
}

// recordKeyChanges copies the key store's changes not yet in the audit log
// into it (apikey.created, apikey.rotated, apikey.revoked).
func (e *edge) recordKeyChanges(ctx context.Context, log *audit.Log) error {
	var after uint64
	if b, err := os.ReadFile(e.recorded); err == nil {
		after, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	changes, err := e.store.Changes(ctx, after)
	if err != nil || len(changes) == 0 {
		return err
	}
	for _, c := range changes {
		if _, err := log.Record(ctx, "apikey."+c.Action, c); err != nil {
			return err
		}
		after = c.Seq
	}
	return atomicfile.WriteFile(e.recorded, []byte(strconv.FormatUint(after, 10)+"\n"), 0o600)
}

// tlsNote describes the ports' transport for the start message.
func (e *edge) tlsNote() string {
	if e.cfg.PlainTCP {
		return "plain TCP"
	}
	v := "TLS 1.3"
	if e.cfg.TLS.MinVersion == tls.VersionTLS12 {
		v = "TLS 1.2+"
	}
	if e.cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert {
		v += ", client certificates required"
	}
	return v + ", pin " + e.pin
}
