package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startMetrics serves the collectors in Prometheus form on addr (host:port;
// port 0 picks one) at /metrics, off the engine's threads, and returns the
// address it listens on and a stop function. With addr empty it serves
// nothing and says so in the log.
func startMetrics(addr string, log *slog.Logger, cs ...prometheus.Collector) (string, func(), error) {
	if addr == "" {
		log.Info("metrics endpoint off (--metrics ADDR serves Prometheus metrics, for example the netseg denial counters)")
		return "", func() {}, nil
	}
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return "", nil, fmt.Errorf("metrics: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen on %s: %w (choose another --metrics address)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err.Error())
		}
	}()
	bound := ln.Addr().String()
	log.Info("metrics endpoint", "url", "http://"+bound+"/metrics")
	return bound, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
