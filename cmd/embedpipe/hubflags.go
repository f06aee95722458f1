package main

import (
	"os"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/hub"
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
