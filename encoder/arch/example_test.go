package arch_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
)

// ExampleBuild builds the encoder of a model directory from its config.json
// and checkpoint, and runs two sequences as one unpadded batch.
func ExampleBuild() {
	const dir = "../../testdata/tiny-bert"
	cfg, err := arch.ReadConfig(dir + "/config.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	ck, err := safetensors.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ck.Close()
	enc, err := arch.Build(cfg, ck)
	if err != nil {
		fmt.Println(err)
		return
	}
	// [CLS] hello world [SEP] and [CLS] bank [SEP], end to end.
	ids := []int32{101, 7592, 2088, 102, 101, 2924, 102}
	starts := []int{0, 4, 7}
	out := make([]float32, len(ids)*enc.Hidden())
	var s arch.Scratch
	if err := enc.Forward(context.Background(), &s, ids, starts, out); err != nil {
		fmt.Println(err)
		return
	}
	d := enc.Describe()
	fmt.Println("bert registered:", slices.Contains(arch.Supported(), "bert"))
	fmt.Println("layers:", d.Layers, "hidden:", enc.Hidden(), "token vectors:", len(out)/enc.Hidden())
	// Output:
	// bert registered: true
	// layers: 2 hidden: 32 token vectors: 7
}
