package encoder

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
)

// hashVersion is mixed into ContentHash; bump it when a change of this
// package alters the numbers a model produces, so that caches keyed by the
// hash are invalidated.
const hashVersion = "embedpipe-encoder/1"

// ContentHash returns a stable hex SHA-256 over the model's defining files
// (config, module configs, tokenizer files and checkpoint), by their paths
// relative to the model directory and their bytes, and over the compute
// mode when it is not float32 (an int8 model gives other vectors, so it
// must not share a cache or a resumed output with the float32 one; float32
// hashes are unchanged). It is computed on the
// first call, which reads every weight file once; a file that cannot be
// read contributes its error text instead, so the hash still differs from
// the intact model's.
func (m *Model) ContentHash() string {
	m.hashOnce.Do(func() {
		h := sha256.New()
		io.WriteString(h, hashVersion)
		if m.info.Compute != "" && m.info.Compute != ComputeFloat32.String() {
			io.WriteString(h, "\x00compute="+m.info.Compute)
		}
		var n [8]byte
		for _, f := range m.hashFiles {
			rel, err := filepath.Rel(m.info.Dir, f)
			if err != nil {
				rel = f
			}
			rel = filepath.ToSlash(rel)
			binary.LittleEndian.PutUint64(n[:], uint64(len(rel)))
			h.Write(n[:])
			io.WriteString(h, rel)
			if err := hashFile(h, f); err != nil {
				io.WriteString(h, "\x00error: "+err.Error())
			}
		}
		m.hash = hex.EncodeToString(h.Sum(nil))
	})
	return m.hash
}

// hashFile writes the length and bytes of file path to w.
func hashFile(w io.Writer, path string) error {
	return withFile(path, func(f *os.File, size int64) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(size))
		w.Write(n[:])
		_, err := io.Copy(w, f)
		return err
	})
}

// withFile opens the file at path and calls f with it and its size, which
// the file's own Stat gives (so that they describe the same file).
func withFile(path string, f func(*os.File, int64) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	return f(file, st.Size())
}
