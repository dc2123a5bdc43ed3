"""Looking at an output: a summary, a check of every row against the contract, renders, a report.

`summary.summarize` counts; `validate.validate_output` checks; `render.render_row` draws a row;
`report.write_report` puts all of it in one self-contained HTML page. The CLI front is
`synth.cli.inspect_cmd.inspect_command`.
"""
