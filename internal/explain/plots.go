package explain

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// DPI is the resolution of the PNG pictures.
const DPI = 96

// Sizes of the pictures, in points: a heatmap gives each token perTok, a
// panel is at least minCell wide, and tick labels use tickFont.
const (
	perTok   = vg.Length(9)
	minCell  = vg.Length(110)
	tickFont = vg.Length(6.5)
	labelMax = 14 // runes of a token label
)

// masked is the colour of attention entries the mask forbids, so that
// causal triangles and sliding-window bands show as such.
var masked = color.RGBA{R: 225, G: 225, B: 225, A: 255}

// grid is a plotter.GridXYZ over a row-major matrix: column c is x = c,
// row r is y = r (drawn top-down with an inverted Y scale).
type grid struct {
	z    []float64
	c, r int
}

func (g grid) Dims() (int, int)       { return g.c, g.r }
func (g grid) Z(c, r int) float64     { return g.z[r*g.c+c] }
func (g grid) X(c int) float64        { return float64(c) }
func (g grid) Y(r int) float64        { return float64(r) }
func (g grid) Min() float64           { return 0 }
func (g grid) Max() float64           { return 1 }
func (g grid) at(c, r int, v float64) { g.z[r*g.c+c] = v }

// label shortens a token for an axis.
func label(s string) string {
	if utf8.RuneCountInString(s) <= labelMax {
		return s
	}
	r := []rune(s)
	return string(r[:labelMax-1]) + "…"
}

// ticks labels positions 0..len(names)-1 with names.
func ticks(names []string) plot.Ticker {
	t := make([]plot.Tick, len(names))
	for i, n := range names {
		t[i] = plot.Tick{Value: float64(i), Label: label(n)}
	}
	return plot.ConstantTicks(t)
}

// labelWidth is the room the longest of names takes as a tick label.
func labelWidth(names []string) vg.Length {
	w := 0
	for _, n := range names {
		w = max(w, utf8.RuneCountInString(label(n)))
	}
	return vg.Length(w)*tickFont*0.62 + 14
}

// heatPlot returns a plot of g with xs labelling the columns and ys the
// rows, coloured by cm over [lo, hi], NaN entries in masked.
func heatPlot(title string, g grid, xs, ys []string, cm palette.ColorMap, lo, hi float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 9
	cm.SetMin(lo)
	cm.SetMax(hi)
	h := plotter.NewHeatMap(g, cm.Palette(256))
	h.Min, h.Max = lo, hi
	h.NaN = masked
	h.Underflow, h.Overflow = cm.Palette(256).Colors()[0], cm.Palette(256).Colors()[255]
	p.Add(h)
	p.X.Tick.Marker = ticks(xs)
	p.Y.Tick.Marker = ticks(ys)
	p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Tick.Label.Font.Size = tickFont
		ax.Padding = 0
	}
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	return p
}

// colorBar returns a vertical colour bar plot of cm over [lo, hi].
func colorBar(title string, cm palette.ColorMap, lo, hi float64) *plot.Plot {
	cm.SetMin(lo)
	cm.SetMax(hi)
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 8
	p.HideX()
	p.Y.Tick.Label.Font.Size = 7
	p.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	return p
}

// picture is a set of panels on a rows×cols grid with a heading and an
// optional colour bar on the right, rendered to PNG or SVG.
type picture struct {
	heading    string
	panels     [][]*plot.Plot
	cellW      vg.Length
	cellH      vg.Length
	bar        *plot.Plot
	headHeight vg.Length
}

const barWidth = vg.Length(70)

func (pc *picture) size() (w, h vg.Length) {
	rows, cols := len(pc.panels), len(pc.panels[0])
	w = vg.Length(cols)*pc.cellW + 20
	if pc.bar != nil {
		w += barWidth
	}
	pc.headHeight = 28
	h = vg.Length(rows)*pc.cellH + pc.headHeight + 10
	return w, h
}

func (pc *picture) draw(dc draw.Canvas) {
	sty := plot.New().Title.TextStyle
	sty.Font.Size = 11
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YTop
	dc.FillText(sty, vg.Point{X: dc.Min.X + 10, Y: dc.Max.Y - 8}, pc.heading)
	body := draw.Crop(dc, 10, -10, 10, -pc.headHeight)
	if pc.bar != nil {
		barC := draw.Crop(body, body.Size().X-barWidth+10, 0, body.Size().Y/4, -body.Size().Y/4)
		if body.Size().Y < 240 {
			barC = draw.Crop(body, body.Size().X-barWidth+10, 0, 0, 0)
		}
		pc.bar.Draw(barC)
		body = draw.Crop(body, 0, -barWidth, 0, 0)
	}
	t := draw.Tiles{Rows: len(pc.panels), Cols: len(pc.panels[0]), PadX: 12, PadY: 12}
	cs := plot.Align(pc.panels, t, body)
	for i := range pc.panels {
		for j, p := range pc.panels[i] {
			if p != nil {
				p.Draw(cs[i][j])
			}
		}
	}
}

// render draws pc into a PNG or SVG ("png" or "svg") in memory.
func (pc *picture) render(format string) ([]byte, error) {
	w, h := pc.size()
	var buf bytes.Buffer
	switch format {
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
		pc.draw(draw.New(c))
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
			return nil, fmt.Errorf("explain: encoding PNG: %w", err)
		}
	case "svg":
		c := vgsvg.New(w, h)
		dc := draw.New(c)
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		pc.draw(dc)
		if _, err := c.WriteTo(&buf); err != nil {
			return nil, fmt.Errorf("explain: encoding SVG: %w", err)
		}
	default:
		return nil, fmt.Errorf("explain: unknown picture format %q", format)
	}
	return buf.Bytes(), nil
}

// attentionColors is the sequential colour map of attention weights.
func attentionColors() palette.ColorMap { return moreland.ExtendedBlackBody() }

// AttentionPicture is the grid of attention heatmaps of text ti: one row
// per shown layer, one column per shown head, queries down, keys across,
// one colour scale from 0 to the largest weight shown.
func (r *Result) AttentionPicture(ti int) *picture {
	tx := &r.Texts[ti]
	n := len(tx.Tokens)
	hi := 0.0
	for _, l := range r.ShownLayers {
		for _, h := range r.ShownHeads {
			for _, row := range tx.Attention[l][h] {
				for _, v := range row {
					hi = max(hi, float64(v))
				}
			}
		}
	}
	hi = math.Max(hi, 1e-6)
	cm := attentionColors()
	var panels [][]*plot.Plot
	for _, l := range r.ShownLayers {
		li := r.Layers[l]
		var row []*plot.Plot
		for _, h := range r.ShownHeads {
			g := grid{z: make([]float64, n*n), c: n, r: n}
			for q := 0; q < n; q++ {
				lo, end := li.mask.Range(q, n)
				for k := 0; k < n; k++ {
					v := float64(tx.Attention[l][h][q][k])
					if k < lo || k >= end {
						v = math.NaN()
					}
					g.at(k, q, v)
				}
			}
			title := fmt.Sprintf("layer %d · head %d", l, h)
			if r.Model.KVHeads != r.Model.Heads {
				title += fmt.Sprintf(" → kv %d", r.KVHeadOf[h])
			}
			if li.Mask != "full" {
				title += " · " + li.Mask
				if li.Window > 0 {
					title += fmt.Sprintf(" %d", li.Window)
				}
			}
			row = append(row, heatPlot(title, g, tx.Tokens, tx.Tokens, cm, 0, hi))
		}
		panels = append(panels, row)
	}
	side := max(minCell, vg.Length(n)*perTok) + labelWidth(tx.Tokens) + 22
	return &picture{
		heading: fmt.Sprintf("Attention of %q (%s; rows: query tokens, columns: key tokens; grey: masked)", short(tx.Text, 60), r.Model.Arch),
		panels:  panels, cellW: side, cellH: side + 6, bar: colorBar("weight", attentionColors(), 0, hi),
	}
}

// ContextPicture shows, per text, the cosine between each token's static
// embedding and its state at each stage, and, when texts share a token,
// the similarity of its two occurrences stage by stage.
func (r *Result) ContextPicture() *picture {
	var row []*plot.Plot
	maxN := 0
	var longest []string
	for i := range r.Texts {
		tx := &r.Texts[i]
		n, S := len(tx.Tokens), len(r.Stages)
		g := grid{z: make([]float64, n*S), c: S, r: n}
		for t := 0; t < n; t++ {
			for s := 0; s < S; s++ {
				g.at(s, t, tx.StaticCosine[t][s])
			}
		}
		row = append(row, heatPlot(fmt.Sprintf("text %d: cosine to the static embedding", i+1), g, r.Stages, tx.Tokens, moreland.SmoothBlueRed(), -1, 1))
		if n > maxN {
			maxN, longest = n, tx.Tokens
		}
	}
	if len(r.Shared) > 0 {
		row = append(row, r.sharedPlot())
	}
	cellH := max(minCell+60, vg.Length(maxN)*perTok+labelWidth(r.Stages)+30)
	cellW := max(minCell+40, vg.Length(len(r.Stages))*28+labelWidth(longest))
	return &picture{
		heading: "How far each token moves from its static embedding, layer by layer",
		panels:  [][]*plot.Plot{row}, cellW: cellW, cellH: cellH, bar: colorBar("cosine", moreland.SmoothBlueRed(), -1, 1),
	}
}

// maxSharedLines bounds the lines of the shared-token plot.
const maxSharedLines = 8

// sharedPlot draws, for each shared token, the cosine of its two
// occurrences from the static embedding (1) through every stage.
func (r *Result) sharedPlot() *plot.Plot {
	p := plot.New()
	p.Title.Text = "same token in two texts: static vs contextual"
	p.Title.TextStyle.Font.Size = 9
	p.Y.Label.Text = "cosine between the two occurrences"
	p.Y.Label.TextStyle.Font.Size = 8
	names := append([]string{"static"}, r.Stages...)
	p.X.Tick.Marker = ticks(names)
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Label.Font.Size = tickFont
	p.Y.Tick.Label.Font.Size = 7
	p.Y.Min, p.Y.Max = math.Min(0, minShared(r.Shared)), 1.05
	p.Legend.Top = false
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = 7
	p.Add(plotter.NewGrid())
	for i, s := range r.Shared[:min(len(r.Shared), maxSharedLines)] {
		pts := make(plotter.XYs, 0, len(s.ByStage)+1)
		pts = append(pts, plotter.XY{X: 0, Y: s.Static})
		for j, v := range s.ByStage {
			pts = append(pts, plotter.XY{X: float64(j + 1), Y: v})
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			continue
		}
		l.Color = plotutil.Color(i)
		sc.Color = plotutil.Color(i)
		sc.Shape = draw.CircleGlyph{}
		p.Add(l, sc)
		p.Legend.Add(fmt.Sprintf("%s (texts %d, %d)", label(s.Token), s.TextA+1, s.TextB+1), l, sc)
	}
	return p
}

func minShared(s []SharedToken) float64 {
	m := 1.0
	for _, t := range s {
		for _, v := range t.ByStage {
			m = math.Min(m, v)
		}
	}
	return m
}

// SimilarityPicture shows the cosine matrix of the pooled embeddings and
// the PCA map of every token's final state.
func (r *Result) SimilarityPicture() *picture {
	k := len(r.Texts)
	g := grid{z: make([]float64, k*k), c: k, r: k}
	names := make([]string, k)
	for i := range r.Texts {
		names[i] = fmt.Sprintf("%d: %s", i+1, short(r.Texts[i].Text, 12))
		for j := range r.Texts {
			g.at(j, i, r.Similarity[i][j])
		}
	}
	hm := heatPlot("cosine of the pooled embeddings", g, names, names, moreland.SmoothBlueRed(), -1, 1)
	var cells plotter.XYLabels
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			cells.XYs = append(cells.XYs, plotter.XY{X: float64(j), Y: float64(i)})
			cells.Labels = append(cells.Labels, fmt.Sprintf("%.3f", r.Similarity[i][j]))
		}
	}
	if lab, err := plotter.NewLabels(cells); err == nil {
		for i := range lab.TextStyle {
			lab.TextStyle[i].XAlign = draw.XCenter
			lab.TextStyle[i].YAlign = draw.YCenter
			lab.TextStyle[i].Font.Size = 8
		}
		hm.Add(lab)
	}
	sc := plot.New()
	sc.Title.Text = fmt.Sprintf("token states after the last layer, PCA (%.0f%% + %.0f%% of the variance)", 100*r.PCA.Explained[0], 100*r.PCA.Explained[1])
	sc.Title.TextStyle.Font.Size = 9
	sc.X.Label.Text, sc.Y.Label.Text = "PC 1", "PC 2"
	sc.X.Tick.Label.Font.Size, sc.Y.Tick.Label.Font.Size = 7, 7
	sc.Legend.TextStyle.Font.Size = 7
	sc.Add(plotter.NewGrid())
	for i := range r.Texts {
		var xy plotter.XYLabels
		for _, pt := range r.PCA.Points {
			if pt.Text == i {
				xy.XYs = append(xy.XYs, plotter.XY{X: pt.X, Y: pt.Y})
				xy.Labels = append(xy.Labels, label(pt.Token))
			}
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			continue
		}
		s.Color = plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		sc.Add(s)
		sc.Legend.Add(names[i], s)
		if lab, err := plotter.NewLabels(xy); err == nil {
			for j := range lab.TextStyle {
				lab.TextStyle[j].Font.Size = 6.5
				lab.TextStyle[j].Color = plotutil.Color(i)
			}
			lab.Offset = vg.Point{X: 3, Y: 2}
			sc.Add(lab)
		}
	}
	side := max(vg.Length(300), vg.Length(k)*50+labelWidth(names)+40)
	return &picture{
		heading: "Why the texts come out similar (or not)",
		panels:  [][]*plot.Plot{{hm, sc}}, cellW: max(side, 380), cellH: max(side, 380),
	}
}

// RoutesPicture shows, for a mixture-of-experts model, the weight with
// which each token of each text was routed to each expert, one panel per
// text and MoE layer. It returns nil for a model without experts.
func (r *Result) RoutesPicture() *picture {
	var panels [][]*plot.Plot
	maxN, experts := 0, 0
	var longest []string
	for i := range r.Texts {
		for _, rt := range r.Texts[i].Routes {
			for _, ex := range rt.Experts {
				for _, e := range ex {
					experts = max(experts, int(e)+1)
				}
			}
		}
	}
	if experts == 0 {
		return nil
	}
	enames := make([]string, experts)
	for e := range enames {
		enames[e] = fmt.Sprintf("expert %d", e)
	}
	for i := range r.Texts {
		tx := &r.Texts[i]
		n := len(tx.Tokens)
		var row []*plot.Plot
		for _, rt := range tx.Routes {
			g := grid{z: make([]float64, n*experts), c: experts, r: n}
			for t := 0; t < n; t++ {
				for j, e := range rt.Experts[t] {
					g.at(int(e), t, float64(rt.Weights[t][j]))
				}
			}
			row = append(row, heatPlot(fmt.Sprintf("text %d · layer %d routes", i+1, rt.Layer), g, enames, tx.Tokens, attentionColors(), 0, 1))
		}
		panels = append(panels, row)
		if n > maxN {
			maxN, longest = n, tx.Tokens
		}
	}
	return &picture{
		heading: "Mixture of experts: the weight of each expert a token was routed to",
		panels:  panels,
		cellW:   max(minCell, vg.Length(experts)*30) + labelWidth(longest) + 20,
		cellH:   vg.Length(maxN)*perTok + labelWidth(enames) + 30,
		bar:     colorBar("weight", attentionColors(), 0, 1),
	}
}

// short cuts s to n runes for a title.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
