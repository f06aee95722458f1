package main

import (
	"context"
	"errors"
)

// runEmbed is not written yet; its owner replaces this file.
func runEmbed(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
