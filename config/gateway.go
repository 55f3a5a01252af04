package config

import "encoding/json"

// Gateway configures the order-entry and market-data ports and the metrics
// endpoint of `tradecore serve` (docs/protocol.md). Every field has a
// default; Parse fills them.
type Gateway struct {
	// OrderEntry, MarketData and Metrics are listen addresses; "-" turns
	// one off. Defaults 127.0.0.1:7001, 127.0.0.1:7002, 127.0.0.1:9464.
	OrderEntry, MarketData, Metrics string
	// TLS: Mode "on" (the default) or "off" (plain TCP, for co-location;
	// logged as a warning at start). CertFile and KeyFile default to a
	// self-signed certificate under <data-dir>/gateway/tls; ClientCA turns on
	// mutual TLS; MinVersion is "1.3" (default) or "1.2".
	TLSMode, CertFile, KeyFile, ClientCA, MinVersion string
	// Session timing, milliseconds.
	HeartbeatMs, HeartbeatTimeoutMs, MaxClockSkewMs int64
	// Limits.
	MaxSessions, MaxConnsPerAddr, LoginsPerAddr int64
	SessionRate, AccountRate, AddressRate       int64
	OutboundQueue, MDReplay                     int64
}

// Defaults of the gateway section.
const (
	DefaultOrderEntry = "127.0.0.1:7001"
	DefaultMarketData = "127.0.0.1:7002"
	DefaultMetrics    = "127.0.0.1:9464"
)

type gatewayJSON struct {
	OrderEntry         json.RawMessage `json:"order_entry"`
	MarketData         json.RawMessage `json:"market_data"`
	Metrics            json.RawMessage `json:"metrics"`
	TLS                json.RawMessage `json:"tls"`
	HeartbeatMs        json.RawMessage `json:"heartbeat_ms"`
	HeartbeatTimeoutMs json.RawMessage `json:"heartbeat_timeout_ms"`
	MaxClockSkewMs     json.RawMessage `json:"max_clock_skew_ms"`
	MaxSessions        json.RawMessage `json:"max_sessions"`
	MaxConnsPerAddr    json.RawMessage `json:"max_conns_per_addr"`
	LoginsPerAddr      json.RawMessage `json:"logins_per_addr"`
	SessionRate        json.RawMessage `json:"session_rate"`
	AccountRate        json.RawMessage `json:"account_rate"`
	AddressRate        json.RawMessage `json:"address_rate"`
	OutboundQueue      json.RawMessage `json:"outbound_queue"`
	MDReplay           json.RawMessage `json:"md_replay"`
}

const gatewayFields = "order_entry, market_data, metrics, tls, heartbeat_ms, heartbeat_timeout_ms, max_clock_skew_ms, max_sessions, max_conns_per_addr, logins_per_addr, session_rate, account_rate, address_rate, outbound_queue, md_replay"

type tlsJSON struct {
	Mode       json.RawMessage `json:"mode"`
	CertFile   json.RawMessage `json:"cert_file"`
	KeyFile    json.RawMessage `json:"key_file"`
	ClientCA   json.RawMessage `json:"client_ca"`
	MinVersion json.RawMessage `json:"min_version"`
}

const tlsFields = "mode, cert_file, key_file, client_ca, min_version"

func parseGateway(raw json.RawMessage, g *Gateway) error {
	*g = Gateway{OrderEntry: DefaultOrderEntry, MarketData: DefaultMarketData, Metrics: DefaultMetrics, TLSMode: "on", MinVersion: "1.3",
		HeartbeatMs: 1000, HeartbeatTimeoutMs: 15000, MaxClockSkewMs: 5000, MaxSessions: 1024, MaxConnsPerAddr: 16, LoginsPerAddr: 20,
		SessionRate: 250_000, AccountRate: 500_000, AddressRate: 1_000_000, OutboundQueue: 256 << 10, MDReplay: 1 << 16}
	if absent(raw) {
		return nil
	}
	var gj gatewayJSON
	if err := decodeObject(raw, "gateway", gatewayFields, &gj); err != nil {
		return err
	}
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *string
	}{{gj.OrderEntry, "gateway.order_entry", &g.OrderEntry}, {gj.MarketData, "gateway.market_data", &g.MarketData}, {gj.Metrics, "gateway.metrics", &g.Metrics}} {
		s, ok, err := decodeString(f.raw, f.name)
		if err != nil {
			return err
		}
		if ok && s != "" {
			*f.dst = s
		}
	}
	for _, f := range []struct {
		raw      json.RawMessage
		name     string
		dst      *int64
		min, max int64
	}{
		{gj.HeartbeatMs, "gateway.heartbeat_ms", &g.HeartbeatMs, 10, 60_000},
		{gj.HeartbeatTimeoutMs, "gateway.heartbeat_timeout_ms", &g.HeartbeatTimeoutMs, 20, 600_000},
		{gj.MaxClockSkewMs, "gateway.max_clock_skew_ms", &g.MaxClockSkewMs, 1, 600_000},
		{gj.MaxSessions, "gateway.max_sessions", &g.MaxSessions, 1, 1 << 20},
		{gj.MaxConnsPerAddr, "gateway.max_conns_per_addr", &g.MaxConnsPerAddr, 1, 1 << 20},
		{gj.LoginsPerAddr, "gateway.logins_per_addr", &g.LoginsPerAddr, 1, 1 << 20},
		{gj.SessionRate, "gateway.session_rate", &g.SessionRate, 1, 1 << 30},
		{gj.AccountRate, "gateway.account_rate", &g.AccountRate, 1, 1 << 30},
		{gj.AddressRate, "gateway.address_rate", &g.AddressRate, 1, 1 << 30},
		{gj.OutboundQueue, "gateway.outbound_queue", &g.OutboundQueue, 4096, 1 << 30},
		{gj.MDReplay, "gateway.md_replay", &g.MDReplay, 16, 1 << 26},
	} {
		v, ok, err := decodeInt(f.raw, f.name)
		if err != nil {
			return err
		}
		if !ok || v == 0 {
			continue
		}
		if v < f.min || v > f.max {
			return invalid(f.name, "%d is out of range; use %d..%d (0 or leave it out for the default)", v, f.min, f.max)
		}
		*f.dst = v
	}
	if g.HeartbeatTimeoutMs <= g.HeartbeatMs {
		return invalid("gateway.heartbeat_timeout_ms", "%d must exceed gateway.heartbeat_ms (%d)", g.HeartbeatTimeoutMs, g.HeartbeatMs)
	}
	if absent(gj.TLS) {
		return nil
	}
	var tj tlsJSON
	if err := decodeObject(gj.TLS, "gateway.tls", tlsFields, &tj); err != nil {
		return err
	}
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *string
	}{{tj.Mode, "gateway.tls.mode", &g.TLSMode}, {tj.CertFile, "gateway.tls.cert_file", &g.CertFile}, {tj.KeyFile, "gateway.tls.key_file", &g.KeyFile},
		{tj.ClientCA, "gateway.tls.client_ca", &g.ClientCA}, {tj.MinVersion, "gateway.tls.min_version", &g.MinVersion}} {
		s, ok, err := decodeString(f.raw, f.name)
		if err != nil {
			return err
		}
		if ok && s != "" {
			*f.dst = s
		}
	}
	switch {
	case g.TLSMode != "on" && g.TLSMode != "off":
		return invalid("gateway.tls.mode", "%q; use \"on\" (the default) or \"off\" (plain TCP, for co-location)", truncate(g.TLSMode))
	case g.MinVersion != "1.3" && g.MinVersion != "1.2":
		return invalid("gateway.tls.min_version", "%q; use \"1.3\" (the default) or \"1.2\"", truncate(g.MinVersion))
	case (g.CertFile == "") != (g.KeyFile == ""):
		return invalid("gateway.tls", "give both cert_file and key_file, or neither (a self-signed certificate under the data dir)")
	case g.TLSMode == "off" && (g.CertFile != "" || g.ClientCA != ""):
		return invalid("gateway.tls", "mode is \"off\" but certificates are given; remove them or turn TLS on")
	}
	return nil
}
