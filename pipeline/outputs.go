package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/embedpipe/embedpipe/io/dataset"
)

// OutputPaths returns the file each of cfg.Inputs is written to: cfg.Output
// itself for one input, else a file of the directory cfg.Output named by
// OutputName (with the row-group range of a partial input). Two inputs
// that would write the same file are an error.
func OutputPaths(cfg Config) ([]string, error) {
	outs := make([]string, len(cfg.Inputs))
	if len(cfg.Inputs) == 1 {
		outs[0] = cfg.Output
		return outs, nil
	}
	if cfg.OutputFormat != "" {
		if err := dataset.Writable("x." + cfg.OutputFormat); err != nil {
			return nil, fmt.Errorf("%w: output format %q: want parquet, arrow, arrows or jsonl", ErrConfig, cfg.OutputFormat)
		}
	}
	seen := map[string]string{}
	for i, in := range cfg.Inputs {
		name := OutputName(in.Path)
		if cfg.OutputFormat != "" {
			name = strings.TrimSuffix(name, filepath.Ext(name)) + "." + cfg.OutputFormat
		}
		if in.RowGroupLo != 0 || in.RowGroupHi != 0 {
			ext := filepath.Ext(name)
			name = fmt.Sprintf("%s.rg%d-%d%s", strings.TrimSuffix(name, ext), in.RowGroupLo, in.RowGroupHi, ext)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: inputs %s and %s would both write %s", ErrConfig, prev, in.Path, name)
		}
		seen[name] = in.Path
		outs[i] = filepath.Join(cfg.Output, name)
	}
	return outs, nil
}

// CheckOutputs refuses a run that would destroy data: an output that is
// one of the inputs (the same file, also through a symbolic link or a
// directory run into the input directory), and, unless overwrite is set,
// an output that a finished run wrote — one with no checkpoint directory
// beside it. An unfinished output (its checkpoint is there) is left to
// Run to resume. The errors wrap ErrOutput.
func CheckOutputs(cfg Config, overwrite bool) error {
	outs, err := OutputPaths(cfg)
	if err != nil {
		return err
	}
	var ins []os.FileInfo
	for _, in := range cfg.Inputs {
		if st, err := os.Stat(in.Path); err == nil {
			ins = append(ins, st)
		}
	}
	for i, out := range outs {
		ost, err := os.Stat(out)
		if err != nil {
			continue // nothing there yet (or unreadable: Run reports it)
		}
		for j, ist := range ins {
			if os.SameFile(ost, ist) {
				return fmt.Errorf("%w: output %s is the input %s; choose another --output", ErrOutput, out, cfg.Inputs[j].Path)
			}
		}
		if _, err := os.Stat(checkpointDir(out)); err == nil {
			continue // an unfinished run: resume
		}
		if !overwrite {
			return fmt.Errorf("%w: %s exists from a finished run (input %s); give --overwrite to replace it, or another --output",
				ErrOutput, out, cfg.Inputs[i].Path)
		}
	}
	return nil
}
