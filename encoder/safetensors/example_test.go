package safetensors_test

import (
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/embedpipe/embedpipe/encoder/safetensors"
)

// Example writes a one-tensor checkpoint (two BF16 values) and reads it back
// converted to float32, checking the shape a model loader expects.
func Example() {
	header := `{"__metadata__":{"format":"pt"},"bias":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	file = append(file, header...)
	file = binary.LittleEndian.AppendUint16(file, 0x3f80) // 1.0
	file = binary.LittleEndian.AppendUint16(file, 0xc040) // -3.0

	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), file, 0o644); err != nil {
		log.Fatal(err)
	}

	ckpt, err := safetensors.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer ckpt.Close()

	name, _ := ckpt.Lookup("bert.bias", "bias")
	info, _ := ckpt.Info(name)
	v, err := ckpt.Float32(name, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name, info.DType, info.Shape, v, ckpt.NumParams())

	_, err = ckpt.Float32(name, 3)
	fmt.Println(err != nil)
	// Output:
	// bias BF16 [2] [1 -3] 2
	// true
}
