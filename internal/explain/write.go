package explain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/embedpipe/embedpipe/io/fileio"
)

// File is one output of Write, in memory.
type File struct {
	Name string
	Data []byte
}

// Render draws every picture and returns the files Write puts in a
// directory: attention.png and attention.svg for the first text
// (attention-N.* for text N), context.png, similarity.png, routes.png for
// a mixture-of-experts model, report.html and explain.json.
func (r *Result) Render() ([]File, error) {
	var files []File
	pngs := map[string][]byte{}
	add := func(name, format string, pc *picture) error {
		data, err := pc.render(format)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		files = append(files, File{name, data})
		if format == "png" {
			pngs[name] = data
		}
		return nil
	}
	for i := range r.Texts {
		base := "attention"
		if i > 0 {
			base = fmt.Sprintf("attention-%d", i+1)
		}
		pc := r.AttentionPicture(i)
		if err := add(base+".png", "png", pc); err != nil {
			return nil, err
		}
		if err := add(base+".svg", "svg", pc); err != nil {
			return nil, err
		}
	}
	if err := add("context.png", "png", r.ContextPicture()); err != nil {
		return nil, err
	}
	if err := add("similarity.png", "png", r.SimilarityPicture()); err != nil {
		return nil, err
	}
	if pc := r.RoutesPicture(); pc != nil {
		if err := add("routes.png", "png", pc); err != nil {
			return nil, err
		}
	}
	html, err := r.report(pngs)
	if err != nil {
		return nil, err
	}
	files = append(files, File{"report.html", html})
	js, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return nil, fmt.Errorf("explain: explain.json: %w", err)
	}
	files = append(files, File{"explain.json", append(js, '\n')})
	return files, nil
}

// Write renders r into directory dir (created if needed). Each file is
// written atomically (fileio.WriteFileAtomic), so a reader never sees a
// partial file.
func (r *Result) Write(dir string) ([]string, error) {
	files, err := r.Render()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("explain: output directory: %w", err)
	}
	var names []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := fileio.WriteFileAtomic(p, f.Data); err != nil {
			return names, fmt.Errorf("explain: %w", err)
		}
		names = append(names, p)
	}
	return names, nil
}
