package explain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/explain"
	"github.com/embedpipe/embedpipe/internal/refs"
)

var update = flag.Bool("update", false, "rewrite the golden explain.json files in testdata")

// The README's example: "bank" takes its meaning from "river" in one text
// and from "rates" in the other.
var bank = []string{"the river bank flooded", "the bank raised its rates"}

func load(t *testing.T, name string) *encoder.Model {
	t.Helper()
	m, err := encoder.Load(refs.ModelDir(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// checkAttention checks that every row of every head sums to 1 and is zero
// outside the layer's mask.
func checkAttention(t *testing.T, r *explain.Result) {
	t.Helper()
	for ti, tx := range r.Texts {
		n := len(tx.Tokens)
		if len(tx.Attention) != r.Model.Layers {
			t.Fatalf("text %d: %d layers of attention, want %d", ti, len(tx.Attention), r.Model.Layers)
		}
		for l, heads := range tx.Attention {
			li := r.Layers[l]
			if len(heads) != r.Model.Heads {
				t.Fatalf("text %d layer %d: %d heads", ti, l, len(heads))
			}
			for h, rows := range heads {
				for q, row := range rows {
					sum := 0.0
					for k, v := range row {
						allowed := true
						if strings.Contains(li.Mask, "causal") && k > q {
							allowed = false
						}
						if li.Window > 0 && (k < q-li.Window/2 || k > q+li.Window/2) {
							allowed = false
						}
						if !allowed && v != 0 {
							t.Fatalf("text %d layer %d head %d: p[%d][%d] = %g where the %s mask forbids", ti, l, h, q, k, v, li.Mask)
						}
						sum += float64(v)
					}
					if len(row) != n || math.Abs(sum-1) > 1e-5 {
						t.Fatalf("text %d layer %d head %d row %d: %d keys summing to %.7f", ti, l, h, q, len(row), sum)
					}
				}
			}
		}
	}
}

// TestBankTinyBERT explains the README's pair on tiny-bert: attention rows
// are distributions, the embeddings are EmbedBatch's to the bit, "bank" is
// found in both texts and its two occurrences drift apart, and the whole
// explain.json matches the golden file.
func TestBankTinyBERT(t *testing.T) {
	m := load(t, "tiny-bert")
	r, err := explain.Run(context.Background(), m, bank, explain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAttention(t, r)
	var b encoder.Batch
	for _, s := range bank {
		if _, err := m.AppendTo(&b, s, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]float32, len(bank)*m.Dim())
	if err := m.EmbedBatch(context.Background(), &b, want); err != nil {
		t.Fatal(err)
	}
	for i, tx := range r.Texts {
		if !slices.Equal(tx.Embedding, want[i*m.Dim():(i+1)*m.Dim()]) {
			t.Errorf("text %d: the embedding differs from EmbedBatch's", i)
		}
		if !slices.Equal(tx.InputIDs, b.IDs[b.Starts[i]:b.Starts[i+1]]) {
			t.Errorf("text %d: input ids %v", i, tx.InputIDs)
		}
	}
	if got := strings.Join(r.Texts[0].Tokens, " "); got != "[CLS] the river bank flooded [SEP]" {
		t.Errorf("tokens %q", got)
	}
	var sb *explain.SharedToken
	for i := range r.Shared {
		if r.Shared[i].Token == "bank" {
			sb = &r.Shared[i]
		}
	}
	if sb == nil {
		t.Fatalf("bank is not among the shared tokens %+v", r.Shared)
	}
	if sb.PosA != 3 || sb.PosB != 2 || sb.Static != 1 || len(sb.ByStage) != r.Model.Layers+1 {
		t.Errorf("bank: %+v", sb)
	}
	if last := sb.ByStage[len(sb.ByStage)-1]; last >= 0.99 {
		t.Errorf("bank's two contextual vectors have cosine %.4f: context did not move them", last)
	}
	t.Logf("bank across the two texts, static 1, by stage %.4f; pooled cosine %.4f", sb.ByStage, r.Similarity[0][1])
	for i := range r.Similarity {
		if math.Abs(r.Similarity[i][i]-1) > 1e-6 {
			t.Errorf("similarity[%d][%d] = %g", i, i, r.Similarity[i][i])
		}
	}
	if len(r.PCA.Points) != len(r.Texts[0].Tokens)+len(r.Texts[1].Tokens) || r.PCA.Explained[0] < r.PCA.Explained[1] || r.PCA.Explained[0] <= 0 {
		t.Errorf("PCA: %d points, explained %v", len(r.PCA.Points), r.PCA.Explained)
	}
	top := r.Texts[0].Top[0][0][3]
	if len(top) == 0 || top[0].Weight < top[len(top)-1].Weight || top[0].Weight != r.Texts[0].Attention[0][0][3][top[0].Key] {
		t.Errorf("top attended of bank: %+v", top)
	}
	js, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "tiny-bert-bank.explain.json", js)
}

// golden compares js with testdata/name, numbers within 1e-5 so that a
// change of summation order in a kernel does not break it, and rewrites
// the file with -update.
func golden(t *testing.T, name string, js []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var got, want any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	// The model directory depends on where the shared material is.
	delete(got.(map[string]any)["model"].(map[string]any), "dir")
	delete(want.(map[string]any)["model"].(map[string]any), "dir")
	if diff := compareJSON("", got, want); diff != "" {
		t.Errorf("%s differs from the golden file (run with -update if intended): %s", name, diff)
	}
}

func compareJSON(path string, got, want any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %T with %d keys, want an object with %d", path, got, len(g), len(w))
		}
		for k, wv := range w {
			if d := compareJSON(path+"."+k, g[k], wv); d != "" {
				return d
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if d := compareJSON(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); d != "" {
				return d
			}
		}
	case float64:
		g, ok := got.(float64)
		if !ok || math.Abs(g-w) > 1e-5 {
			return fmt.Sprintf("%s: got %v, want %v", path, got, w)
		}
	default:
		if got != want {
			return fmt.Sprintf("%s: got %v, want %v", path, got, want)
		}
	}
	return ""
}

// TestEveryArch explains the pair on every architecture: rows are
// distributions that respect causal and sliding-window masks, the
// embeddings are EmbedBatch's, and the pictures render.
func TestEveryArch(t *testing.T) {
	long := "the quick brown fox jumps over the lazy dog while the river bank floods after days of heavy rain"
	for _, name := range []string{"tiny-xlmr", "tiny-mpnet", "tiny-modernbert", "tiny-qwen3", "tiny-qwen3-moe"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, name)
			texts := []string{bank[0], bank[1], long}
			r, err := explain.Run(context.Background(), m, texts, explain.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkAttention(t, r)
			want := make([]float32, len(texts)*m.Dim())
			if err := m.Embed(context.Background(), texts, "", want); err != nil {
				t.Fatal(err)
			}
			for i, tx := range r.Texts {
				if !slices.Equal(tx.Embedding, want[i*m.Dim():(i+1)*m.Dim()]) {
					t.Errorf("text %d: the embedding differs from Embed's", i)
				}
			}
			masks := map[string]bool{}
			for _, l := range r.Layers {
				masks[l.Mask] = true
			}
			switch name {
			case "tiny-qwen3", "tiny-qwen3-moe":
				if !masks["causal"] || r.Model.KVHeads == r.Model.Heads || r.KVHeadOf[1] != 0 || r.KVHeadOf[len(r.KVHeadOf)-1] != r.Model.KVHeads-1 {
					t.Errorf("masks %v, kv heads %v", masks, r.KVHeadOf)
				}
			case "tiny-modernbert":
				if !masks["window"] || !masks["full"] {
					t.Errorf("masks %v", masks)
				}
			}
			files, err := r.Render()
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, f := range files {
				names[f.Name] = true
			}
			if name == "tiny-qwen3-moe" {
				if !names["routes.png"] || len(r.Texts[0].Routes) == 0 {
					t.Fatalf("no routes for a mixture of experts: %v", names)
				}
				for _, rt := range r.Texts[0].Routes {
					for tok, w := range rt.Weights {
						s := 0.0
						for _, v := range w {
							s += float64(v)
						}
						if s <= 0 || s > 1+1e-5 || len(rt.Experts[tok]) != len(w) {
							t.Errorf("layer %d token %d: weights %v", rt.Layer, tok, w)
						}
					}
				}
			} else if names["routes.png"] {
				t.Error("routes.png for a model without experts")
			}
			for _, f := range files {
				if f.Name == "attention.png" || f.Name == "routes.png" {
					checkPNG(t, f.Name, f.Data, 0, 0)
				}
			}
		})
	}
}

// checkPNG decodes a picture and checks its size (when w > 0), that it is
// not blank (a fair share of non-white pixels, many colours) and that it
// has a white background.
func checkPNG(t *testing.T, name string, data []byte, w, h int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	bd := img.Bounds()
	if w > 0 && (bd.Dx() != w || bd.Dy() != h) {
		t.Errorf("%s: %d×%d pixels, want %d×%d", name, bd.Dx(), bd.Dy(), w, h)
	}
	if bd.Dx() < 300 || bd.Dy() < 200 {
		t.Errorf("%s: %d×%d pixels is too small to read", name, bd.Dx(), bd.Dy())
	}
	colours := map[color.RGBA]bool{}
	ink := 0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colours[c] = true
			if c.R < 240 || c.G < 240 || c.B < 240 {
				ink++
			}
		}
	}
	share := float64(ink) / float64(bd.Dx()*bd.Dy())
	if share < 0.05 || len(colours) < 50 {
		t.Errorf("%s looks blank: %.1f%% ink, %d colours", name, 100*share, len(colours))
	}
	if c := color.RGBAModel.Convert(img.At(bd.Min.X+1, bd.Min.Y+1)).(color.RGBA); c != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("%s: background %v, want white", name, c)
	}
	return img
}

// svgTexts returns the text content of every <text> element of an SVG,
// failing on malformed XML.
func svgTexts(t *testing.T, data []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	in := false
	var root string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			in = e.Name.Local == "text"
		case xml.CharData:
			if in {
				out = append(out, strings.TrimSpace(string(e)))
			}
		case xml.EndElement:
			in = false
		}
	}
	if root != "svg" {
		t.Fatalf("SVG root element %q", root)
	}
	return out
}

// TestPictures renders the bank pair on tiny-bert and checks every file:
// the PNGs decode at the size the layout asks for and are not blank, the
// attention heatmaps carry the tokens as labels on both axes (counted in
// the SVG), a masked cell is drawn grey on a causal model, and report.html
// is self-contained with the top attended tokens in words.
func TestPictures(t *testing.T) {
	m := load(t, "tiny-bert")
	r, err := explain.Run(context.Background(), m, bank, explain.Options{Heads: []int{0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := r.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"attention.png", "attention.svg", "attention-2.png", "attention-2.svg", "context.png", "similarity.png", "report.html", "explain.json"}
	var got []string
	for _, p := range paths {
		got = append(got, filepath.Base(p))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("%d entries in the output directory (temporary files left?)", len(entries))
	}
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, n := range []string{"attention.png", "attention-2.png", "context.png", "similarity.png"} {
		img := checkPNG(t, n, read(n), 0, 0)
		if n == "attention.png" {
			// Two heads side by side, two layers: wider than tall, and
			// bigger than a 6-token grid would need at 9 pt a token.
			b := img.Bounds()
			if b.Dx() <= b.Dy() {
				t.Errorf("attention.png is %d×%d for a 2×2 grid plus a colour bar", b.Dx(), b.Dy())
			}
		}
	}
	texts := svgTexts(t, read("attention.svg"))
	count := func(s string) int {
		n := 0
		for _, x := range texts {
			if x == s {
				n++
			}
		}
		return n
	}
	// Four panels (2 layers × 2 heads), each labelling both axes.
	for _, tok := range r.Texts[0].Tokens {
		if c := count(tok); c != 8 {
			t.Errorf("token %q labels the attention SVG %d times, want 8 (4 panels × 2 axes)", tok, c)
		}
	}
	if count("layer 1 · head 2") != 1 || count("layer 0 · head 1") != 0 {
		t.Errorf("panel titles: %q", texts)
	}
	html := string(read("report.html"))
	for _, s := range []string{"data:image/png;base64,", "bank ← ", "[CLS]", "cosine", "explain.json"} {
		if !strings.Contains(html, s) {
			t.Errorf("report.html lacks %q", s)
		}
	}
	if strings.Contains(html, `src="attention.png"`) || strings.Contains(html, "http://") || strings.Contains(html, "https://") {
		t.Error("report.html is not self-contained")
	}
	var back explain.Result
	if err := json.Unmarshal(read("explain.json"), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Texts) != 2 || len(back.Texts[0].Attention) != r.Model.Layers {
		t.Errorf("explain.json read back: %d texts", len(back.Texts))
	}
}

// TestCausalMaskGrey checks that the causal triangle of a decoder is drawn
// in the masked grey: the upper right cell of the first panel.
func TestCausalMaskGrey(t *testing.T) {
	m := load(t, "tiny-qwen3")
	r, err := explain.Run(context.Background(), m, bank[:1], explain.Options{Layers: []int{0}, Heads: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	img := checkPNG(t, "attention.png", files[0].Data, 0, 0)
	grey := color.RGBA{225, 225, 225, 255}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) == grey {
				n++
			}
		}
	}
	// A strict upper triangle of k tokens is k(k-1)/2 cells of about 12×12
	// pixels each.
	k := len(r.Texts[0].Tokens)
	if min := k * (k - 1) / 2 * 100; n < min {
		t.Errorf("%d masked-grey pixels for %d tokens, want at least %d", n, k, min)
	}
}

// TestGuards checks the refusals: no text, an empty text, a text over the
// token limit, a layer or head the model does not have.
func TestGuards(t *testing.T) {
	m := load(t, "tiny-bert")
	ctx := context.Background()
	cases := []struct {
		texts []string
		opt   explain.Options
		want  error
		msg   string
	}{
		{nil, explain.Options{}, explain.ErrInput, "no text"},
		{[]string{"ok", "  "}, explain.Options{}, explain.ErrInput, "text 2 is empty"},
		{[]string{strings.Repeat("word ", 70)}, explain.Options{}, explain.ErrTooLong, "text 1 has 72 tokens, more than the limit of 64"},
		{[]string{"a b c d e"}, explain.Options{MaxTokens: 4}, explain.ErrTooLong, "limit of 4"},
		{[]string{"ok"}, explain.Options{Layers: []int{2}}, explain.ErrInput, "layer 2 does not exist (the model has 2: 0..1)"},
		{[]string{"ok"}, explain.Options{Heads: []int{9}}, explain.ErrInput, "head 9 does not exist"},
		{[]string{"ok"}, explain.Options{MaxTokens: 1000}, explain.ErrInput, "max tokens 1000"},
	}
	for _, c := range cases {
		_, err := explain.Run(ctx, m, c.texts, c.opt)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.msg) {
			t.Errorf("%q %+v: %v, want %v mentioning %q", c.texts, c.opt, err, c.want, c.msg)
		}
	}
	if _, err := explain.Run(ctx, m, []string{strings.Repeat("word ", 70)}, explain.Options{MaxTokens: 100}); err != nil {
		t.Errorf("a 72-token text under --max-tokens 100: %v", err)
	}
}

func TestTopLine(t *testing.T) {
	got := explain.TopLine("bank", []explain.Attended{{Key: 2, Token: "river", Weight: 0.414}, {Key: 4, Token: "flooded", Weight: 0.2249}})
	if want := "bank ← river 0.41, flooded 0.22"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestLongestText explains a text of MaxTokensLimit tokens on a causal and
// a sliding-window model: the rows still sum to 1 inside their masks and
// the embedding is still Embed's to the bit, so the observed path and
// embed's fused attention agree over the whole range explain accepts.
func TestLongestText(t *testing.T) {
	for _, name := range []string{"tiny-modernbert", "tiny-qwen3"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, name)
			words := []string{"the", "river", "bank", "flooded", "after", "rain", "and", "the", "rates", "rose"}
			text := ""
			for i := 0; i < 4*explain.MaxTokensLimit; i++ {
				next := strings.TrimSpace(text + " " + words[i%len(words)])
				if ids, _ := m.TokenizeTo(nil, next, "", 2*explain.MaxTokensLimit); len(ids) > explain.MaxTokensLimit {
					break
				}
				text = next
			}
			r, err := explain.Run(context.Background(), m, []string{text}, explain.Options{MaxTokens: explain.MaxTokensLimit, Layers: []int{0}, Heads: []int{0}})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(r.Texts[0].Tokens); n < explain.MaxTokensLimit-2 {
				t.Fatalf("%d tokens, want about %d", n, explain.MaxTokensLimit)
			}
			checkAttention(t, r)
			want := make([]float32, m.Dim())
			if err := m.Embed(context.Background(), []string{text}, "", want); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Texts[0].Embedding, want) {
				t.Error("the embedding of a text at the token limit differs from Embed's")
			}
		})
	}
}
