package explain

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"
)

// reportPage is the template of report.html: one self-contained page, the
// pictures inlined as data URLs.
var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>embedpipe explain: {{.R.Model.Arch}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:100%;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em}
.tok{display:inline-block;border:1px solid #bbb;border-radius:3px;padding:1px 4px;margin:2px;font-family:monospace;background:#f6f6f6}
.tok small{color:#888}
img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
details{margin:.3em 0}summary{cursor:pointer}
.note{color:#a60}
</style></head><body>
<h1>How {{.R.Model.Arch}} reads {{len .R.Texts}} text(s)</h1>
<p>Model <code>{{.R.Model.Dir}}</code>: {{.R.Model.ModelType}}, {{.R.Model.Layers}} layers, {{.R.Model.Heads}} heads
{{- if ne .R.Model.KVHeads .R.Model.Heads}} sharing {{.R.Model.KVHeads}} key/value heads{{end}}, hidden {{.R.Model.Hidden}},
pooling {{.R.Model.Pooling}}{{if .R.Model.Normalize}}, normalized{{end}}.
Layer masks: {{range .R.Layers}}{{.Layer}}: {{.Mask}}{{if .Window}} {{.Window}}{{end}}{{if .MoE}} (MoE){{end}}; {{end}}</p>
{{range .R.Notes}}<p class="note">{{.}}</p>{{end}}
{{range $i, $t := .Texts}}
<h2>Text {{inc $i}}: “{{$t.T.Text}}”</h2>
<p>{{len $t.T.Tokens}} tokens as the tokenizer cut them:<br>
{{range $k, $tok := $t.T.Tokens}}<span class="tok">{{$tok}} <small>{{index $t.T.InputIDs $k}}</small></span>{{end}}</p>
<img src="{{$t.Img}}" alt="attention heatmaps of text {{inc $i}}">
<h3>Top attended tokens per head</h3>
{{range $t.Heads}}<details><summary>{{.Title}}</summary><table>
{{range .Lines}}<tr><td>{{.}}</td></tr>{{end}}</table></details>
{{end}}
{{if $t.Routes}}<h3>Expert routes</h3>
{{range $t.Routes}}<details><summary>{{.Title}}</summary><table>
{{range .Lines}}<tr><td>{{.}}</td></tr>{{end}}</table></details>
{{end}}{{end}}
{{end}}
<h2>Context: how far each token moves from its static embedding</h2>
<p>Each cell is the cosine between a token's static (input) embedding and its vector after the embeddings and after each layer.
{{if .R.Shared}}The line plot follows tokens two texts share: their static embeddings are the same row (cosine 1); the layers pull the two occurrences apart by their contexts.{{end}}</p>
<img src="{{.Context}}" alt="context picture">
{{if .R.Shared}}<table><tr><th>token</th><th>texts</th><th>static</th>{{range .R.Stages}}<th>{{.}}</th>{{end}}</tr>
{{range .R.Shared}}<tr><td>{{.Token}}</td><td>{{inc .TextA}} · {{inc .TextB}}</td><td>{{printf "%.3f" .Static}}</td>{{range .ByStage}}<td>{{printf "%.3f" .}}</td>{{end}}</tr>
{{end}}</table>{{end}}
<h2>Similarity</h2>
<img src="{{.Similarity}}" alt="similarity picture">
{{if .Routes}}<h2>Experts</h2><img src="{{.Routes}}" alt="expert routes">{{end}}
<p>Every number behind these pictures is in <code>explain.json</code>.</p>
</body></html>
`))

type reportBlock struct {
	Title string
	Lines []string
}

type reportText struct {
	T      *Text
	Img    template.URL
	Heads  []reportBlock
	Routes []reportBlock
}

func dataURL(png []byte) template.URL {
	if png == nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// report renders report.html with the PNGs of Render.
func (r *Result) report(pngs map[string][]byte) ([]byte, error) {
	data := struct {
		R                           *Result
		Texts                       []reportText
		Context, Similarity, Routes template.URL
	}{R: r, Context: dataURL(pngs["context.png"]), Similarity: dataURL(pngs["similarity.png"]), Routes: dataURL(pngs["routes.png"])}
	for i := range r.Texts {
		tx := &r.Texts[i]
		name := "attention.png"
		if i > 0 {
			name = fmt.Sprintf("attention-%d.png", i+1)
		}
		rt := reportText{T: tx, Img: dataURL(pngs[name])}
		for _, l := range r.ShownLayers {
			for _, h := range r.ShownHeads {
				b := reportBlock{Title: fmt.Sprintf("layer %d, head %d", l, h)}
				if r.Model.KVHeads != r.Model.Heads {
					b.Title += fmt.Sprintf(" (kv head %d)", r.KVHeadOf[h])
				}
				for q, tops := range tx.Top[l][h] {
					b.Lines = append(b.Lines, TopLine(tx.Tokens[q], tops))
				}
				rt.Heads = append(rt.Heads, b)
			}
		}
		for _, ro := range tx.Routes {
			b := reportBlock{Title: fmt.Sprintf("layer %d", ro.Layer)}
			for t, ex := range ro.Experts {
				parts := make([]string, len(ex))
				for j, e := range ex {
					parts[j] = fmt.Sprintf("expert %d %.2f", e, ro.Weights[t][j])
				}
				b.Lines = append(b.Lines, fmt.Sprintf("%s → %s", tx.Tokens[t], strings.Join(parts, ", ")))
			}
			rt.Routes = append(rt.Routes, b)
		}
		data.Texts = append(data.Texts, rt)
	}
	var buf bytes.Buffer
	if err := reportPage.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("explain: report.html: %w", err)
	}
	return buf.Bytes(), nil
}

// TopLine says in words which keys a query attends to most:
// "bank ← river 0.41, flooded 0.22, the 0.10".
func TopLine(query string, tops []Attended) string {
	parts := make([]string, len(tops))
	for i, a := range tops {
		parts[i] = fmt.Sprintf("%s %.2f", a.Token, a.Weight)
	}
	return query + " ← " + strings.Join(parts, ", ")
}
