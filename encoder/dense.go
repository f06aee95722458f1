package encoder

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/embedpipe/embedpipe/encoder/kernels"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
)

// DenseInfo describes one sentence-transformers Dense module: a linear
// layer from In to Out features and an activation, applied to the pooled
// embedding.
type DenseInfo struct {
	In   int  `json:"in"`
	Out  int  `json:"out"`
	Bias bool `json:"bias"`
	// Activation is the activation's class name: Identity, Tanh, ReLU,
	// GELU or Sigmoid.
	Activation string `json:"activation"`
}

// headAct is an elementwise activation of a head (Dense module,
// cross-encoder score), named as torch.nn names the class.
type headAct struct {
	name string
	f    func(x []float32) // nil: identity
}

// headActs are the activations of heads this package implements, keyed by
// the torch.nn class name.
var headActs = map[string]headAct{
	"Identity": {"Identity", nil},
	"Tanh":     {"Tanh", tanhF32},
	"ReLU":     {"ReLU", kernels.ReLU},
	"GELU":     {"GELU", kernels.GELU},
	"Sigmoid":  {"Sigmoid", sigmoidF32},
}

// lookupHeadAct resolves an activation given as a class path
// ("torch.nn.modules.activation.Tanh", "torch.nn.Tanh") or a bare class
// name. An empty name is Identity.
func lookupHeadAct(path, key, name string) (headAct, error) {
	if name == "" {
		return headActs["Identity"], nil
	}
	if a, ok := headActs[moduleKind(name)]; ok {
		return a, nil
	}
	known := slices.Sorted(func(yield func(string) bool) {
		for k := range headActs {
			if !yield(k) {
				return
			}
		}
	})
	return headAct{}, fmt.Errorf("%w: %s: %s %q (supported: %s)", ErrUnsupported, path, key, name, strings.Join(known, ", "))
}

// tanhF32 applies tanh in place, evaluated in float64.
func tanhF32(x []float32) {
	for i, v := range x {
		x[i] = float32(math.Tanh(float64(v)))
	}
}

// sigmoidF32 applies the logistic function in place, evaluated in float64.
func sigmoidF32(x []float32) {
	for i, v := range x {
		x[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
}

// denseModule is a loaded Dense module.
type denseModule struct {
	lin  *kernels.Dense
	act  headAct
	info DenseInfo
}

// loadDense loads the Dense module in dir: config.json (in_features,
// out_features, bias, activation_function) and model.safetensors
// (linear.weight, linear.bias). in is the width it must accept.
func loadDense(dir string, in int) (*denseModule, error) {
	cpath := filepath.Join(dir, "config.json")
	var c struct {
		In   *int    `json:"in_features"`
		Out  *int    `json:"out_features"`
		Bias *bool   `json:"bias"`
		Act  *string `json:"activation_function"`
	}
	if err := readJSON(cpath, &c); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing", ErrModelDir, cpath)
		}
		return nil, err
	}
	if c.In == nil || c.Out == nil || *c.In < 1 || *c.Out < 1 || *c.In > 1<<20 || *c.Out > 1<<20 {
		return nil, fmt.Errorf("%w: %s: in_features and out_features must be positive integers", ErrConfig, cpath)
	}
	if *c.In != in {
		return nil, fmt.Errorf("%w: %s: in_features %d, but the module before it gives %d", ErrConfig, cpath, *c.In, in)
	}
	bias := c.Bias == nil || *c.Bias // sentence-transformers' default
	// sentence-transformers' Dense defaults to Tanh when the config names
	// no activation.
	actName := "torch.nn.modules.activation.Tanh"
	if c.Act != nil {
		actName = *c.Act
	}
	act, err := lookupHeadAct(cpath, "activation_function", actName)
	if err != nil {
		return nil, err
	}
	wpath := filepath.Join(dir, safetensors.SingleFileName)
	if _, err := os.Stat(wpath); err != nil {
		if _, berr := os.Stat(filepath.Join(dir, "pytorch_model.bin")); berr == nil {
			return nil, fmt.Errorf("%w: %s: only pytorch_model.bin (pickle) is present; convert the Dense weights to %s", ErrUnsupported, dir, safetensors.SingleFileName)
		}
		return nil, fmt.Errorf("%w: %s is missing", ErrModelDir, wpath)
	}
	ck, err := safetensors.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	defer ck.Close()
	w, err := ck.Float32("linear.weight", *c.Out, *c.In)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	var b []float32
	if bias {
		if b, err = ck.Float32("linear.bias", *c.Out); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeights, err)
		}
	}
	return &denseModule{
		lin:  kernels.NewDense(w, b, *c.Out, *c.In),
		act:  act,
		info: DenseInfo{In: *c.In, Out: *c.Out, Bias: bias, Activation: act.name},
	}, nil
}

// applyDense runs the Dense chain over rows pooled vectors in x (rows ×
// chain input width) and writes the result (rows × last Out) into dst,
// using a and b as ping-pong scratch. It returns the scratch buffers, grown
// as needed, for reuse.
func applyDense(chain []*denseModule, dst, x []float32, rows int, a, b []float32) ([]float32, []float32) {
	in := x
	for i, d := range chain {
		var out []float32
		if i == len(chain)-1 {
			out = dst[:rows*d.info.Out]
		} else {
			a = growF32(a, rows*d.info.Out)
			out = a
			a, b = b, a
		}
		d.lin.Forward(out, in, rows)
		if d.act.f != nil {
			d.act.f(out)
		}
		in = out
	}
	return a, b
}
