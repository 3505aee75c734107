from shared.runner import main

main("registration")
