// The page's one large-view dialog (index.html #heatmap-dialog): History opens a row's heat map in it, and an
// Analyze card its film, with the heat map over it as the card shows it. At 1280 px a card's film is about
// 420 px wide, too small to read a chest film by; one dialog, so that both views enlarge alike.
import { $ } from './dom';

export interface LargeView {
  title: string;
  /** The image shown: a card's film, or History's heat map (which has the film under its colours). */
  image: { src: string; alt: string };
  /** A heat map laid over `image` at the card's opacity (0 to 1), or none. */
  overlay?: { src: string; alt: string; opacity: number } | null;
  /** Whether the colour legend and what the colours are not go with it: only where colours are shown. */
  legend: boolean;
  /** Whether the dialog owns `image.src` (a blob: URL made for it alone), freed when the next view replaces it. */
  owned?: boolean;
  /** A film at the size of the window (a card's), not History's heat map thumbnail size. */
  wide?: boolean;
}

/** The blob: URL the dialog made its own (LargeView.owned), freed when replaced. */
let owned: string | null = null;

export function showLargeView(v: LargeView): void {
  const dialog = $('#heatmap-dialog') as HTMLDialogElement;
  const img = $('#heatmap-image') as HTMLImageElement;
  const over = $('#large-overlay') as HTMLImageElement;
  $('#heatmap-title').textContent = v.title;
  if (owned && owned !== v.image.src) URL.revokeObjectURL(owned);
  owned = v.owned ? v.image.src : null;
  // The film's shape, for style.css to size it to the window whatever its pixels: by its own size, a 224 px film
  // (the training set's) and a DICOM's thumbnail were shown smaller than on their card.
  const shape = () => {
    if (img.naturalWidth && img.naturalHeight)
      dialog.style.setProperty('--film-aspect', String(img.naturalWidth / img.naturalHeight));
  };
  img.onload = shape;
  img.src = v.image.src;
  // The same src again (a card enlarged twice) may not load anew.
  if (img.complete) shape();
  img.alt = v.image.alt;
  over.hidden = !v.overlay;
  if (v.overlay) {
    over.src = v.overlay.src;
    over.alt = v.overlay.alt;
    over.style.opacity = String(v.overlay.opacity);
  } else {
    over.removeAttribute('src');
    over.alt = '';
  }
  $('.large-legend', dialog).hidden = !v.legend;
  dialog.classList.toggle('wide', v.wide === true);
  if (!dialog.open) dialog.showModal();
}

/** Closes and empties the dialog (a forgotten token): its title, film and heat map were the previous clinician's. */
export function clearLargeView(): void {
  const dialog = $('#heatmap-dialog') as HTMLDialogElement;
  if (dialog.open) dialog.close();
  if (owned) URL.revokeObjectURL(owned);
  owned = null;
  $('#heatmap-title').textContent = '';
  for (const id of ['#heatmap-image', '#large-overlay']) {
    const img = $(id) as HTMLImageElement;
    img.removeAttribute('src');
    img.alt = '';
  }
}
