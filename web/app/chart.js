// The loss chart: training loss per logged step and validation loss per epoch, drawn by uPlot (loaded on
// first use, so pages without a chart never download it). It redraws in place as samples arrive.
import { html, useEffect, useRef } from "./html.js";

let uPlotModule = null;
const loadUPlot = () => (uPlotModule ??= import("../vendor/uplot.js").then((m) => m.default));

// Both lines bridge the samples where the other value alone was logged (an epoch's end carries validation).
const SERIES = [
  { label: "Epoch" },
  { label: "Training loss", stroke: "#2846c8", width: 2, spanGaps: true },
  { label: "Validation loss", stroke: "#c2410c", width: 2, spanGaps: true, points: { show: true, size: 7 } },
];

function columns(samples) {
  const rows = samples.filter((s) => typeof s.epoch === "number");
  return [rows.map((s) => s.epoch), rows.map((s) => s.loss ?? null), rows.map((s) => s.valid_loss ?? null)];
}

export function LossChart({ samples }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = columns(samples);
  useEffect(() => {
    let cancelled = false;
    loadUPlot().then((uPlot) => {
      if (cancelled || !box.current) return;
      if (plot.current) {
        plot.current.setData(data);
        return;
      }
      const width = box.current.clientWidth || 600;
      plot.current = new uPlot(
        {
          width, height: 240, series: SERIES, scales: { x: { time: false } },
          axes: [{ label: "epoch" }, { label: "loss" }],
        },
        data,
        box.current,
      );
    });
    return () => {
      cancelled = true;
    };
  }, [samples]);
  useEffect(() => {
    const resize = () => plot.current && box.current && plot.current.setSize({ width: box.current.clientWidth, height: 240 });
    addEventListener("resize", resize);
    return () => {
      removeEventListener("resize", resize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  const last = data[1].filter((v) => v !== null).at(-1);
  const lastValid = data[2].filter((v) => v !== null).at(-1);
  return html`<figure class="chart" data-points=${data[0].length}>
    <div ref=${box} role="img" aria-label=${`Loss curve: ${data[0].length} points${last !== undefined ? `, latest training loss ${last.toFixed(4)}` : ""}${lastValid !== undefined ? `, latest validation loss ${lastValid.toFixed(4)}` : ""}`}></div>
    <figcaption>${data[0].length} training log points${lastValid === undefined ? "; validation loss appears at each epoch's end when the trainer reports it" : ""}.</figcaption>
  </figure>`;
}
