package workers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/pipeline"
)

// TestRequiredFields checks that the constructors and entry points refuse
// a config without its required fields with an error that names the field,
// instead of a nil-interface panic at the first task or request.
func TestRequiredFields(t *testing.T) {
	ctx := context.Background()
	if err := NewWorker(nil, WorkerConfig{}).Run(ctx); !errors.Is(err, pipeline.ErrConfig) || !strings.Contains(err.Error(), "Runner") {
		t.Errorf("worker without a Runner: %v", err)
	}
	if err := NewWorker(nil, WorkerConfig{Runner: &PipelineRunner{}}).Run(ctx); !errors.Is(err, pipeline.ErrConfig) || !strings.Contains(err.Error(), "JetStream") {
		t.Errorf("worker without JetStream: %v", err)
	}
	if _, err := StartService(nil, ServiceConfig{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("service without a model: %v", err)
	}
	if _, err := NewModels(ModelsConfig{}); !errors.Is(err, pipeline.ErrConfig) {
		t.Errorf("model cache without a default: %v", err)
	}
	if err := RunStream(ctx, nil, StreamConfig{}); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), "Encoder") {
		t.Errorf("stream without an encoder: %v", err)
	}
	if _, err := embed.New(nil, embed.Options{}); !errors.Is(err, embed.ErrOptions) {
		t.Errorf("embedder without a model: %v", err)
	}
	func() {
		defer func() {
			if p := recover(); p == nil || !strings.Contains(p.(string), "needs a model") {
				t.Errorf("NewBatcher(nil) recovered %v, want a panic naming the model", p)
			}
		}()
		NewBatcher(nil, BatcherConfig{})
	}()
}
