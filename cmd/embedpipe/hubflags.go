package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/metrics"
	"github.com/nats-io/nats.go"
	"golang.org/x/term"
)

// modelHelp is the usage text of every --model flag.
const modelHelp = "model directory, or Hugging Face Hub id org/name[@revision] (cached in $HF_HOME/hub; HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE)"

// hubOption configures hub downloads for the CLI: the environment's
// settings, with a progress bar on standard error when it is a terminal.
func hubOption() encoder.Option {
	c := hub.FromEnv()
	if term.IsTerminal(int(os.Stderr.Fd())) {
		c.Progress = os.Stderr
	}
	return encoder.WithHub(c)
}

// startMetrics serves /metrics, /health and /live on addr until ctx ends;
// an empty addr gives a nil Metrics (recording nothing) and no server.
func startMetrics(ctx context.Context, addr string, log *slog.Logger) (*metrics.Metrics, *metrics.Health, error) {
	h := &metrics.Health{}
	if addr == "" {
		return nil, h, nil
	}
	m := metrics.New()
	a, err := metrics.Serve(ctx, addr, m, h, log)
	if err != nil {
		return nil, nil, err
	}
	if log != nil {
		log.Info("metrics", "url", "http://"+a.String()+"/metrics")
	}
	return m, h, nil
}

// natsUp is a readiness check: the NATS connection is up.
func natsUp(nc *nats.Conn) func() error {
	return func() error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("connection %s", s)
		}
		return nil
	}
}
