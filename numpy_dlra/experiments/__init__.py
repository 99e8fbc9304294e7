"""Running the method: one configuration, one run folder.
- config      TrainConfig, the one source of every setting (the command line derives from it);
- run_folder  a run's files: config.json, metrics.jsonl, merges.jsonl, checkpoint.npz, summary.json;
- train       the training loop over :func:`numpy_dlra.dlra.algorithm1.train_step`;
- sweep       the fixed-rank baseline's rank sweep (Tables 1-2 and Illustrations 1-2 of the report);
- compare     DLRA against SVD truncation and fixed-rank factors at the ranks DLRA found;
- progress    a 40-line progress bar.
"""
