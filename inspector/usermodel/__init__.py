"""What touches a user's model: importing its code, its checkpoint, its inputs and outputs.

`inspector.loading` puts these together into a LoadedModel; every call into the user's own code
goes through `usercode.user_code`, so a failure there is named as the model's, not ours.
"""
