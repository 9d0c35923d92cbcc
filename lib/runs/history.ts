/** `history.json`: one record per finished epoch, all phases (the training curves' data). */

/** One line of history.json (contract). */
export interface EpochRecord {
  /** 1-based, global across phases. */
  epoch: number;
  phase: 1 | 2;
  loss: number;
  accuracy: number;
  auc: number;
  val_loss: number;
  val_accuracy: number;
  val_auc: number;
  lr: number;
  seconds: number;
}

/** The file's shape: `{ "epochs": [...] }`. */
export interface HistoryFile {
  epochs: EpochRecord[];
}
